//! A chat as the model's template reads it: messages with a role, and a conversation that
//! fits itself into the context by dropping its oldest turns (never the system message, never
//! the newest message). `run` keeps one across turns; serve builds one per request. Pure.

use std::fmt;

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool's result.
    Tool,
}

impl Role {
    /// The role as chat templates name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    /// A role as OpenAI names it; `developer` is the system.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            _ => return None,
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message: who said it and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
        }
    }
}

/// A conversation: an optional system message, then the turns, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conversation {
    messages: Vec<Message>,
}

/// A conversation rendered to fit: the rendered value and how many old messages were dropped.
pub struct Fitted<T> {
    pub rendered: T,
    pub dropped: usize,
}

impl Conversation {
    /// A conversation that starts with `system`, when there is one.
    pub fn new(system: Option<&str>) -> Conversation {
        Conversation {
            messages: system
                .map(|s| vec![Message::new(Role::System, s)])
                .unwrap_or_default(),
        }
    }

    pub fn push(&mut self, role: Role, content: impl Into<String>) {
        self.messages.push(Message::new(role, content));
    }

    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Whether a user has said anything yet.
    pub fn has_user(&self) -> bool {
        self.messages.iter().any(|m| m.role == Role::User)
    }

    /// Renders the conversation with `render` (its text and its length in tokens) and, while
    /// that length is over `budget`, drops the oldest message after the system message and
    /// renders again. The system message and the newest message always stay: a single message
    /// longer than the budget comes back as it is, for the caller to refuse.
    pub fn fit<T, E>(
        &mut self,
        budget: usize,
        mut render: impl FnMut(&[Message]) -> Result<(T, usize), E>,
    ) -> Result<Fitted<T>, E> {
        let first = usize::from(
            self.messages
                .first()
                .is_some_and(|m| m.role == Role::System),
        );
        let mut dropped = 0;
        loop {
            let (rendered, len) = render(&self.messages)?;
            if len <= budget || self.messages.len() <= first + 1 {
                return Ok(Fitted { rendered, dropped });
            }
            self.messages.remove(first);
            dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders as the contents joined, its length in bytes.
    fn joined(m: &[Message]) -> Result<(String, usize), ()> {
        let t = m.iter().map(|m| m.content.as_str()).collect::<String>();
        let n = t.len();
        Ok((t, n))
    }

    #[test]
    fn the_oldest_turns_go_first_and_the_system_message_stays() {
        let mut c = Conversation::new(Some("S"));
        for t in ["aaaa", "bbbb", "cccc", "dd"] {
            c.push(Role::User, t);
        }
        let f = c.fit(7, joined).unwrap();
        assert_eq!((f.rendered.as_str(), f.dropped), ("Sccccdd", 2));
        assert_eq!(c.messages().len(), 3);
        assert_eq!(c.messages()[0].role, Role::System);
        // Within budget: nothing goes.
        let f = c.fit(100, joined).unwrap();
        assert_eq!(f.dropped, 0);
    }

    #[test]
    fn the_newest_message_stays_even_when_it_alone_is_too_long() {
        let mut c = Conversation::new(None);
        c.push(Role::User, "old");
        c.push(Role::User, "a very long message");
        let f = c.fit(3, joined).unwrap();
        assert_eq!((f.rendered.as_str(), f.dropped), ("a very long message", 1));
        assert!(c.has_user());
        assert!(!Conversation::new(Some("s")).has_user());
    }

    #[test]
    fn roles_read_as_openai_names_them() {
        assert_eq!(Role::parse("developer"), Some(Role::System));
        assert_eq!(Role::parse("tool").map(Role::as_str), Some("tool"));
        assert_eq!(Role::parse("narrator"), None);
        assert_eq!(Role::Assistant.to_string(), "assistant");
    }
}
