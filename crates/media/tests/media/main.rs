//! Integration tests of tessera-media against real ffmpeg on generated clips.

mod bad_inputs;
mod pipeline;
mod support;
