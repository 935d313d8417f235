//! A synthetic vision projector shaped like Gemma 3's (a SigLIP encoder, average-pooled to
//! one token per 4×4 patches, then an RMS norm and a projection into the text model's
//! width), with the tensor names llama.cpp's multimodal loader reads (`tools/mtmd/clip.cpp`)
//! and zero weights (a sparse file). Small: an image of `image_size` pixels in `patch`-pixel
//! patches, `n_layer` blocks of width `n_embd`.

use layerfit::ggml_type::GgmlType;
use layerfit::gguf::writer::{Data, GgufWriter, WriteValue};
use std::path::Path;

pub struct Projector {
    pub image_size: u32,
    pub patch: u32,
    pub n_embd: u64,
    pub n_ff: u64,
    pub n_head: u32,
    pub n_layer: u32,
    /// The text model's width, which the projection produces.
    pub text_embd: u64,
}

impl Projector {
    /// For Gemma 3 270M (640 wide): 224-pixel images in 14-pixel patches (16×16 patches,
    /// 16 tokens an image after pooling).
    pub fn for_gemma3_270m() -> Projector {
        Projector {
            image_size: 224,
            patch: 14,
            n_embd: 64,
            n_ff: 128,
            n_head: 4,
            n_layer: 2,
            text_embd: 640,
        }
    }

    /// Writes the file; returns the bytes of its tensors (what the loader counts as weights).
    pub fn write(&self, path: &Path) -> u64 {
        let mut w = GgufWriter::new();
        w.kv("general.architecture", WriteValue::Str("clip".into()))
            .kv(
                "general.name",
                WriteValue::Str("synthetic gemma3 mmproj".into()),
            )
            .kv("clip.has_vision_encoder", WriteValue::Bool(true))
            .kv("clip.projector_type", WriteValue::Str("gemma3".into()))
            .kv("clip.use_gelu", WriteValue::Bool(true))
            .kv("clip.vision.image_size", WriteValue::U32(self.image_size))
            .kv("clip.vision.patch_size", WriteValue::U32(self.patch))
            .kv(
                "clip.vision.embedding_length",
                WriteValue::U32(self.n_embd as u32),
            )
            .kv(
                "clip.vision.feed_forward_length",
                WriteValue::U32(self.n_ff as u32),
            )
            .kv("clip.vision.block_count", WriteValue::U32(self.n_layer))
            .kv(
                "clip.vision.attention.head_count",
                WriteValue::U32(self.n_head),
            )
            .kv(
                "clip.vision.attention.layer_norm_epsilon",
                WriteValue::F32(1e-6),
            )
            .kv(
                "clip.vision.projection_dim",
                WriteValue::U32(self.text_embd as u32),
            )
            .kv(
                "clip.vision.image_mean",
                WriteValue::ArrF32(vec![0.5, 0.5, 0.5]),
            )
            .kv(
                "clip.vision.image_std",
                WriteValue::ArrF32(vec![0.5, 0.5, 0.5]),
            );
        let (e, f, p) = (self.n_embd, self.n_ff, u64::from(self.patch));
        let n_patches = u64::from(self.image_size / self.patch).pow(2);
        let mut bytes = 0u64;
        let mut t = |w: &mut GgufWriter, name: &str, dims: &[u64], ty: GgmlType| {
            let n: u64 = dims.iter().product();
            bytes += if ty == GgmlType::F16 { n * 2 } else { n * 4 };
            w.tensor(name, dims, ty);
        };
        t(&mut w, "v.patch_embd.weight", &[p, p, 3, e], GgmlType::F16);
        t(&mut w, "v.patch_embd.bias", &[e], GgmlType::F32);
        t(
            &mut w,
            "v.position_embd.weight",
            &[e, n_patches],
            GgmlType::F32,
        );
        for il in 0..self.n_layer {
            for (n, dims, ty) in [
                ("attn_q.weight", vec![e, e], GgmlType::F16),
                ("attn_q.bias", vec![e], GgmlType::F32),
                ("attn_k.weight", vec![e, e], GgmlType::F16),
                ("attn_k.bias", vec![e], GgmlType::F32),
                ("attn_v.weight", vec![e, e], GgmlType::F16),
                ("attn_v.bias", vec![e], GgmlType::F32),
                ("attn_out.weight", vec![e, e], GgmlType::F16),
                ("attn_out.bias", vec![e], GgmlType::F32),
                ("ln1.weight", vec![e], GgmlType::F32),
                ("ln1.bias", vec![e], GgmlType::F32),
                ("ln2.weight", vec![e], GgmlType::F32),
                ("ln2.bias", vec![e], GgmlType::F32),
                ("ffn_up.weight", vec![e, f], GgmlType::F16),
                ("ffn_up.bias", vec![f], GgmlType::F32),
                ("ffn_down.weight", vec![f, e], GgmlType::F16),
                ("ffn_down.bias", vec![e], GgmlType::F32),
            ] {
                t(&mut w, &format!("v.blk.{il}.{n}"), &dims, ty);
            }
        }
        t(&mut w, "v.post_ln.weight", &[e], GgmlType::F32);
        t(&mut w, "v.post_ln.bias", &[e], GgmlType::F32);
        t(&mut w, "mm.soft_emb_norm.weight", &[e], GgmlType::F32);
        t(
            &mut w,
            "mm.input_projection.weight",
            &[self.text_embd, e],
            GgmlType::F32,
        );
        w.write(path, Data::Sparse).unwrap();
        bytes
    }
}

/// A 24-bit BMP of `w`×`h` pixels in one colour (stb_image reads BMP).
pub fn bmp(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    let row = (w * 3).div_ceil(4) * 4;
    let size = 54 + row * h;
    let mut b = Vec::with_capacity(size as usize);
    b.extend_from_slice(b"BM");
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&54u32.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&(w as i32).to_le_bytes());
    b.extend_from_slice(&(h as i32).to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&[0u8; 24]);
    for _ in 0..h {
        let mut r = Vec::with_capacity(row as usize);
        for _ in 0..w {
            r.extend_from_slice(&[rgb[2], rgb[1], rgb[0]]);
        }
        r.resize(row as usize, 0);
        b.extend_from_slice(&r);
    }
    std::fs::write(path, b).unwrap();
}
