//! Prints what the bundled llama.cpp allocates for a model and settings (calibration aid).
use layerfit::engine::measure::{measure, MeasureRequest};
use layerfit::ggml_type::GgmlType;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let mut req = MeasureRequest::default();
    req.n_ctx = a[2].parse().unwrap();
    req.type_k = GgmlType::from_name(&a[3]).unwrap();
    req.type_v = req.type_k;
    if a.len() > 4 {
        req.n_ubatch = a[4].parse().unwrap();
    }
    if a.len() > 5 {
        req.flash_attn = Some(a[5] == "1");
    }
    match measure(std::path::Path::new(&a[1]), &req) {
        Ok(m) => println!("{}", serde_json::to_string(&m).unwrap()),
        Err(e) => println!("ERR {e}"),
    }
}
