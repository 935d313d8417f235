//! Hostile servers and secrets: a server that ignores Range, drips, lies about its length,
//! loops, or serves a header with a billion strings gets one error line and exit 2 in
//! bounded time and memory; a gated model needs HF_TOKEN, which is never shown; proxies
//! from the environment are used.

mod common;

use common::remote::*;

#[test]
fn hostile_servers_get_one_error_line_in_bounded_time_and_memory() {
    let s = hub();
    let h = home("hostile");
    // Range ignored: the header is still read, and the stream is cut off.
    let o = layerfit(
        &s,
        &h,
        &["inspect", &format!("{}/norange/smol", s.base), "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = &json(&o)["source"]["transfer"];
    assert!(t["bytes_transferred"].as_u64().unwrap() <= 4 << 20, "{t}");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (format!("{}/billion.gguf", s.base), vec!["64 MiB"]),
        (
            format!("{}/drip/x.gguf", s.base),
            vec!["timed out", "/drip/"],
        ),
        (
            format!("{}/liar/smol", s.base),
            vec!["ended before", "/liar/"],
        ),
        (format!("{}/loop/0", s.base), vec!["redirects", "/loop/"]),
        (format!("{}/files/none.gguf", s.base), vec!["404"]),
        (
            "hf://test-org/nope".to_string(),
            vec!["404", "/api/models/test-org/nope"],
        ),
        (
            "hf://test-org/tiny-GGUF:Q2_K".to_string(),
            vec!["Q2_K", "Q4_1", "Q4_K_M"],
        ),
        ("http://example.com/x.gguf".to_string(), vec!["https"]),
    ];
    for (url, what) in cases {
        let t0 = std::time::Instant::now();
        let o = layerfit(&s, &h, &["inspect", &url]);
        println!(
            "{url}: {:.1} s: {}",
            t0.elapsed().as_secs_f64(),
            stderr(&o).trim()
        );
        assert_one_error(&o, &what);
    }
}

/// TLS spoken to a plain HTTP server, which answers "400 Bad Request" in clear text as
/// nginx or Python's http.server do: the error says what that means, not rustls' record type.
#[test]
fn plain_http_on_an_https_url_is_named() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            use std::io::{Read, Write};
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let s = hub();
    let h = home("plain-http");
    let o = layerfit(
        &s,
        &h,
        &["inspect", &format!("https://127.0.0.1:{port}/m.gguf")],
    );
    assert_one_error(&o, &["without TLS", "plain HTTP", "https://127.0.0.1"]);
    assert!(!stderr(&o).contains("InvalidContentType"), "{}", stderr(&o));
}

#[test]
fn a_gated_model_needs_hf_token_and_the_token_is_never_shown() {
    let s = hub_with_smol_in("test-org/gated-GGUF");
    s.gate("test-org/gated-GGUF", "hf_sekrit_token_42");
    let h = home("gated");
    let name = "hf://test-org/gated-GGUF:Q4_1";
    let o = layerfit(&s, &h, &["inspect", name]);
    assert_one_error(&o, &["401", "HF_TOKEN"]);
    for token in ["hf_wrong_token_7", "hf_sekrit_token_42"] {
        let o = common::in_home(&h, &s.base)
            .args(["plan", "--model", name, "--ctx", "4096", "--json"])
            .env("XDG_CACHE_HOME", h.join(format!(".cache-{token}")))
            .env("HF_TOKEN", token)
            .output()
            .unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
        assert!(!all.contains(token), "the token leaked: {all}");
        if token.contains("wrong") {
            assert_one_error(&o, &["401"]);
        } else {
            assert!(o.status.code().is_some_and(|c| c == 0 || c == 10), "{all}");
        }
    }
    // The token went to the Hub's host only with the resolve request, never elsewhere.
    assert!(s
        .requests("/")
        .iter()
        .any(|l| l.auth.as_deref() == Some("Bearer hf_sekrit_token_42")));
}

#[test]
fn proxies_from_the_environment_are_used() {
    let origin = hub();
    let proxy = hub();
    let h = home("proxy");
    let o = common::in_home(&h, &origin.base)
        .args(["inspect", &format!("{}/files/smol", origin.base), "--json"])
        .env("HTTP_PROXY", &proxy.base)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let tunnels = proxy.requests("CONNECT ");
    let origin_host = origin.base.trim_start_matches("http://");
    assert!(
        !tunnels.is_empty(),
        "went around the proxy: {:?}",
        proxy.requests("")
    );
    assert!(
        tunnels.iter().all(|l| l.path.ends_with(origin_host)),
        "{tunnels:?}"
    );
    assert!(!origin.requests("/files/smol").is_empty());
}
