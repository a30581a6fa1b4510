//! Integration tests of tessera-package on fragmented MP4 files that real
//! ffmpeg writes (`support` makes them).

mod hostile;
mod manifests;
mod playback;
mod split;
mod support;
