//! Integration tests of tessera-media against real ffmpeg on generated clips.

mod bad_inputs;
mod corrupt;
mod files;
mod ladder;
mod ladder_chunks;
mod pipeline;
mod playlists;
mod support;
mod thumbs;
mod thumbs_look;
