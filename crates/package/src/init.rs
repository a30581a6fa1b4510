//! Reading the initialization part (`moov`) of a one-track fragmented MP4:
//! timescale, media kind and size, codec string and the `trex` defaults the
//! fragments fall back on.

use crate::boxes::{Data, Kind};
use crate::codecs::codec_string;
use crate::error::PackageError;
use crate::Media;

/// Per-sample defaults (from `trex`, overridden per fragment by `tfhd`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Defaults {
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
}

/// What the fragments need from the init segment, and what the manifests
/// need to describe the track.
#[derive(Clone, Debug)]
pub(crate) struct Init {
    pub track_id: u32,
    pub timescale: u32,
    pub codec: String,
    pub media: Media,
    pub defaults: Defaults,
}

/// Parses the payload of `moov`.
pub(crate) fn parse_moov(moov: Data<'_>) -> Result<Init, PackageError> {
    let mut traks = Vec::new();
    let mut mvex = None;
    for b in moov.boxes() {
        let (h, d) = b?;
        match &h.kind.0 {
            b"trak" => traks.push(d),
            b"mvex" => mvex = Some(d),
            _ => {}
        }
    }
    let trak = match traks.as_slice() {
        [one] => *one,
        [] => return Err(moov.err(0, "'moov' has no track")),
        more => {
            return Err(moov.err(
                0,
                format!(
                    "'moov' has {} tracks; package one rendition per file (one track each)",
                    more.len()
                ),
            ))
        }
    };
    let Some(mvex) = mvex else {
        return Err(moov.err(0, "'moov' has no 'mvex': this is not a fragmented MP4 (write it with -movflags +frag_keyframe+empty_moov+default_base_moof+cmaf)"));
    };

    let mut r = trak.require(b"tkhd", "trak")?.reader("tkhd");
    let (version, _) = r.version_flags()?;
    r.skip(
        if version == 1 { 16 } else { 8 },
        "creation/modification time",
    )?;
    let track_id = r.u32("track_ID")?;

    let mdia = trak.require(b"mdia", "trak")?;
    let mut r = mdia.require(b"mdhd", "mdia")?.reader("mdhd");
    let (version, _) = r.version_flags()?;
    r.skip(
        if version == 1 { 16 } else { 8 },
        "creation/modification time",
    )?;
    let timescale = r.u32("timescale")?;
    if timescale == 0 {
        return Err(r.err("'mdhd' timescale is 0"));
    }
    let mut r = mdia.require(b"hdlr", "mdia")?.reader("hdlr");
    r.version_flags()?;
    r.skip(4, "pre_defined")?;
    let handler = Kind(r.take(4, "handler_type")?.try_into().unwrap_or([0; 4]));

    let stsd = mdia
        .require(b"minf", "mdia")?
        .require(b"stbl", "minf")?
        .require(b"stsd", "stbl")?;
    let mut r = stsd.reader("stsd");
    r.version_flags()?;
    let count = r.u32("entry_count")?;
    if count != 1 {
        return Err(r.err(format!(
            "'stsd' has {count} sample entries; one is expected"
        )));
    }
    let Some(entry) = stsd.tail(r.pos()).boxes().next() else {
        return Err(stsd.err(0, "'stsd' holds no sample entry"));
    };
    let (eh, ed) = entry?;
    let (media, children) = match &handler.0 {
        b"vide" => visual(ed)?,
        b"soun" => audio(ed)?,
        _ => {
            return Err(mdia.err(
                0,
                format!("track handler '{handler}' is neither video ('vide') nor audio ('soun')"),
            ))
        }
    };
    let codec = codec_string(eh.kind, children)?;
    Ok(Init {
        track_id,
        timescale,
        codec,
        media,
        defaults: trex(mvex, track_id)?,
    })
}

/// Width and height of a VisualSampleEntry; returns the config boxes after it.
fn visual(e: Data<'_>) -> Result<(Media, Data<'_>), PackageError> {
    let mut r = e.reader("visual sample entry");
    r.skip(8 + 16, "reserved/data_reference_index/pre_defined")?;
    let width = u32::from(r.u16("width")?);
    let height = u32::from(r.u16("height")?);
    r.skip(50, "resolution/frame_count/compressorname/depth")?;
    if width == 0 || height == 0 {
        return Err(e.err(24, format!("video sample entry is {width}x{height}")));
    }
    Ok((Media::Video { width, height }, e.tail(r.pos())))
}

/// Channels and sample rate of an AudioSampleEntry (version 0, as MP4 files
/// written by ffmpeg have); returns the config boxes after it.
fn audio(e: Data<'_>) -> Result<(Media, Data<'_>), PackageError> {
    let mut r = e.reader("audio sample entry");
    r.skip(8, "reserved/data_reference_index")?;
    let version = r.u16("version")?;
    if version != 0 {
        return Err(r.err(format!(
            "audio sample entry version {version} (QuickTime layout); write the audio as MP4 (-f mp4)"
        )));
    }
    r.skip(6, "reserved")?;
    let channels = u32::from(r.u16("channelcount")?);
    r.skip(6, "samplesize/pre_defined/reserved")?;
    let sample_rate = r.u32("samplerate")? >> 16;
    if channels == 0 || sample_rate == 0 {
        return Err(e.err(
            16,
            format!("audio sample entry has {channels} channels at {sample_rate} Hz"),
        ));
    }
    Ok((
        Media::Audio {
            channels,
            sample_rate,
        },
        e.tail(r.pos()),
    ))
}

/// The `trex` of `track_id` (ffmpeg writes one per track).
fn trex(mvex: Data<'_>, track_id: u32) -> Result<Defaults, PackageError> {
    for b in mvex.boxes() {
        let (h, d) = b?;
        if &h.kind.0 != b"trex" {
            continue;
        }
        let mut r = d.reader("trex");
        r.version_flags()?;
        if r.u32("track_ID")? != track_id {
            continue;
        }
        r.skip(4, "default_sample_description_index")?;
        return Ok(Defaults {
            duration: r.u32("default_sample_duration")?,
            size: r.u32("default_sample_size")?,
            flags: r.u32("default_sample_flags")?,
        });
    }
    Err(mvex.err(0, format!("'mvex' has no 'trex' for track {track_id}")))
}
