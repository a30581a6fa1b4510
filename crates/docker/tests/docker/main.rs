//! The Docker executor against the real engine, in the image that
//! deploy/image/build-rootfs.sh builds from this machine's binaries.
//! Without an engine the tests are skipped, except under CI.

mod control;
mod harness;
mod run;
