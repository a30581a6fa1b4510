//! Integration tests of `tessera-quality` with real ffmpeg and the libvmaf
//! that `libvmaf-sys` builds, on small clips the tests make.

mod clips;
mod cost;
mod refusals;
mod scores;
