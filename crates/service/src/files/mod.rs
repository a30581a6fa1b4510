//! Files: uploads, encodes and their outputs, volumes, and the tenancy of
//! each project's folders.

pub(crate) mod archive;
pub(crate) mod encode_view;
pub(crate) mod encodes;
pub(crate) mod ladder;
mod tenancy;
pub(crate) mod uploads;
pub(crate) mod volumes;
