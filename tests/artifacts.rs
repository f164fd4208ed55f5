//! Paths of the guests `build.rs` compiled for wasm32-wasip2, as constants
//! (`POSTGRES`, `REDIS`, `HOSTILE`, ...), for the integration tests in `integration/`.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
