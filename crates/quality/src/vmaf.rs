//! A safe handle on libvmaf (built from source by `libvmaf-sys`): one
//! context with the built-in `vmaf_v0.6.1` model, PSNR and SSIM, fed luma
//! frame pairs and asked for per-frame scores.
//!
//! Every `unsafe` block here calls libvmaf with pointers this module owns;
//! the handle is not shared across threads (libvmaf's own pool does the
//! threading).

use crate::decode::FrameFormat;
use crate::error::QualityError;
use libvmaf_sys as sys;
use std::ffi::CStr;
use std::ptr;

/// The model every score uses: VMAF's default for 1080p viewing at 3H.
const MODEL: &CStr = c"vmaf_v0.6.1";
/// The name scores are filed under in the context.
const MODEL_NAME: &CStr = c"vmaf";
/// libvmaf's integer PSNR extractor and the luma score it files.
const PSNR: &CStr = c"psnr";
const PSNR_Y: &CStr = c"psnr_y";
/// libvmaf's SSIM extractor (built in every configuration) and its score.
const SSIM: &CStr = c"float_ssim";

/// One scoring session. Dropping it closes the context and frees the model.
pub(crate) struct Vmaf {
    ctx: *mut sys::VmafContext,
    model: *mut sys::VmafModel,
    format: FrameFormat,
}

fn check(call: &'static str, code: i32) -> Result<(), QualityError> {
    if code == 0 {
        return Ok(());
    }
    Err(QualityError::Vmaf {
        call,
        code,
        hint: "",
    })
}

impl Vmaf {
    /// A context scoring frames of `format` on `threads` threads (libvmaf's
    /// pool; 1 scores on the calling thread), computing every
    /// `subsample`th frame (motion still sees every frame).
    pub fn new(format: FrameFormat, threads: u32, subsample: u32) -> Result<Vmaf, QualityError> {
        let cfg = sys::VmafConfiguration {
            log_level: sys::VmafLogLevel::VMAF_LOG_LEVEL_NONE,
            n_threads: if threads > 1 { threads } else { 0 },
            n_subsample: subsample,
            cpumask: 0,
        };
        let mut ctx = ptr::null_mut();
        // SAFETY: `ctx` is a valid out-pointer; cfg is passed by value.
        check("vmaf_init", unsafe { sys::vmaf_init(&mut ctx, cfg) })?;
        let mut this = Vmaf {
            ctx,
            model: ptr::null_mut(),
            format,
        };
        let mut model_cfg = sys::VmafModelConfig {
            name: MODEL_NAME.as_ptr(),
            flags: 0,
        };
        // SAFETY: out-pointer, config and version string outlive the call.
        let code = unsafe { sys::vmaf_model_load(&mut this.model, &mut model_cfg, MODEL.as_ptr()) };
        if code != 0 {
            return Err(QualityError::Vmaf {
                call: "vmaf_model_load(vmaf_v0.6.1)",
                code,
                hint: "; libvmaf was built without its built-in models (xxd was missing when it was built): install xxd and rebuild",
            });
        }
        // SAFETY: ctx and model are live; a null options dictionary means defaults.
        unsafe {
            check(
                "vmaf_use_features_from_model",
                sys::vmaf_use_features_from_model(this.ctx, this.model),
            )?;
            check(
                "vmaf_use_feature(psnr)",
                sys::vmaf_use_feature(this.ctx, PSNR.as_ptr(), ptr::null_mut()),
            )?;
            check(
                "vmaf_use_feature(float_ssim)",
                sys::vmaf_use_feature(this.ctx, SSIM.as_ptr(), ptr::null_mut()),
            )?;
        }
        Ok(this)
    }

    /// Hands libvmaf the pair at `index` (luma planes of `format`, packed).
    pub fn push(
        &mut self,
        reference: &[u8],
        distorted: &[u8],
        index: u32,
    ) -> Result<(), QualityError> {
        let mut r = self.picture(reference)?;
        let mut d = match self.picture(distorted) {
            Ok(d) => d,
            Err(e) => {
                // SAFETY: `r` was allocated by vmaf_picture_alloc and not handed over.
                unsafe { sys::vmaf_picture_unref(&mut r) };
                return Err(e);
            }
        };
        // SAFETY: both pictures are allocated; on success libvmaf takes
        // (and releases) them, on failure they are still ours to release.
        let code = unsafe { sys::vmaf_read_pictures(self.ctx, &mut r, &mut d, index) };
        if code != 0 {
            // SAFETY: as above, not taken on failure.
            unsafe {
                sys::vmaf_picture_unref(&mut r);
                sys::vmaf_picture_unref(&mut d);
            }
        }
        check("vmaf_read_pictures", code)
    }

    /// A libvmaf picture holding `luma` (4:0:0, the format's depth).
    fn picture(&self, luma: &[u8]) -> Result<sys::VmafPicture, QualityError> {
        let f = self.format;
        assert_eq!(
            luma.len(),
            f.frame_bytes(),
            "frames are read at the format's size"
        );
        // SAFETY: an all-zero VmafPicture is what vmaf_picture_alloc expects to fill.
        let mut pic: sys::VmafPicture = unsafe { std::mem::zeroed() };
        // SAFETY: `pic` is a valid out-pointer.
        check("vmaf_picture_alloc", unsafe {
            sys::vmaf_picture_alloc(
                &mut pic,
                sys::VmafPixelFormat::VMAF_PIX_FMT_YUV400P,
                f.bits,
                f.width,
                f.height,
            )
        })?;
        let row = f.width as usize * f.sample_bytes();
        let stride = pic.stride[0] as usize;
        let base = pic.data[0] as *mut u8;
        for (y, src) in luma.chunks_exact(row).enumerate() {
            // SAFETY: libvmaf allocated `stride * height` bytes for plane 0
            // with stride >= row, and y < height; the source is `row` bytes.
            unsafe { ptr::copy_nonoverlapping(src.as_ptr(), base.add(y * stride), row) };
        }
        Ok(pic)
    }

    /// Waits for every pushed pair to be scored.
    pub fn flush(&mut self) -> Result<(), QualityError> {
        // SAFETY: two null pictures are libvmaf's flush request.
        check("vmaf_read_pictures(flush)", unsafe {
            sys::vmaf_read_pictures(self.ctx, ptr::null_mut(), ptr::null_mut(), 0)
        })
    }

    /// The VMAF, PSNR-Y and SSIM of frame `index` (after [`Vmaf::flush`]).
    pub fn scores_at(&mut self, index: u32) -> Result<[f64; 3], QualityError> {
        let mut out = [0.0; 3];
        // SAFETY: ctx and model are live; out-pointers are valid; names are
        // NUL-terminated constants.
        unsafe {
            check(
                "vmaf_score_at_index",
                sys::vmaf_score_at_index(self.ctx, self.model, &mut out[0], index),
            )?;
            check(
                "vmaf_feature_score_at_index(psnr_y)",
                sys::vmaf_feature_score_at_index(self.ctx, PSNR_Y.as_ptr(), &mut out[1], index),
            )?;
            check(
                "vmaf_feature_score_at_index(float_ssim)",
                sys::vmaf_feature_score_at_index(self.ctx, SSIM.as_ptr(), &mut out[2], index),
            )?;
        }
        Ok(out)
    }
}

impl Drop for Vmaf {
    fn drop(&mut self) {
        // SAFETY: both were created by libvmaf in `new` and are freed once here.
        unsafe {
            sys::vmaf_close(self.ctx);
            if !self.model.is_null() {
                sys::vmaf_model_destroy(self.model);
            }
        }
    }
}
