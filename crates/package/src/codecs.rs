//! RFC 6381 codec strings read from a sample entry's configuration box, so
//! the manifests' `CODECS`/`codecs` say what the bitstream really is
//! (profile and level included), not what the encoder was asked for.

use crate::boxes::{Data, Kind};
use crate::error::PackageError;

/// The codec string for sample entry `entry` (its type) whose payload after
/// the sample-entry fields is `children`.
pub(crate) fn codec_string(entry: Kind, children: Data<'_>) -> Result<String, PackageError> {
    let need = |kind: &[u8; 4]| children.require(kind, &entry.to_string());
    match &entry.0 {
        b"avc1" | b"avc3" => avc(entry, need(b"avcC")?),
        b"hvc1" | b"hev1" => hevc(entry, need(b"hvcC")?),
        b"av01" => av1(need(b"av1C")?),
        b"vp09" => vp9(need(b"vpcC")?),
        b"mp4a" => mp4a(need(b"esds")?),
        b"Opus" => Ok("opus".into()),
        b"fLaC" => Ok("flac".into()),
        b"ac-3" => Ok("ac-3".into()),
        b"ec-3" => Ok("ec-3".into()),
        _ => Err(children.err(
            0,
            format!("sample entry '{entry}' is not a codec this packager knows (avc1/avc3, hvc1/hev1, av01, vp09, mp4a, Opus, fLaC, ac-3, ec-3)"),
        )),
    }
}

/// `avc1.PPCCLL`: profile_idc, constraint flags and level_idc from avcC.
fn avc(entry: Kind, c: Data<'_>) -> Result<String, PackageError> {
    let mut r = c.reader("avcC");
    let _version = r.u8("configurationVersion")?;
    let p = r.u8("AVCProfileIndication")?;
    let k = r.u8("profile_compatibility")?;
    let l = r.u8("AVCLevelIndication")?;
    Ok(format!("{entry}.{p:02x}{k:02x}{l:02x}"))
}

/// `hvc1.[A-C]P.C.TL.B...` per ISO/IEC 14496-15 annex E: profile space and
/// profile, the 32 compatibility flags bit-reversed in hex, tier and level,
/// then the six constraint bytes with trailing zero bytes left out.
fn hevc(entry: Kind, c: Data<'_>) -> Result<String, PackageError> {
    let mut r = c.reader("hvcC");
    let _version = r.u8("configurationVersion")?;
    let b = r.u8("general_profile_space/tier/profile_idc")?;
    let compat = r.u32("general_profile_compatibility_flags")?;
    let constraints = r.take(6, "general_constraint_indicator_flags")?.to_vec();
    let level = r.u8("general_level_idc")?;
    let space = ["", "A", "B", "C"][usize::from(b >> 6)];
    let tier = if b & 0x20 != 0 { 'H' } else { 'L' };
    let profile = b & 0x1f;
    let mut s = format!(
        "{entry}.{space}{profile}.{:x}.{tier}{level}",
        compat.reverse_bits()
    );
    let used = constraints
        .iter()
        .rposition(|&x| x != 0)
        .map_or(0, |i| i + 1);
    for byte in &constraints[..used] {
        s.push_str(&format!(".{byte:X}"));
    }
    Ok(s)
}

/// `av01.P.LLT.DD`: seq_profile, seq_level_idx_0, tier and bit depth.
fn av1(c: Data<'_>) -> Result<String, PackageError> {
    let mut r = c.reader("av1C");
    let marker = r.u8("marker/version")?;
    if marker & 0x80 == 0 {
        return Err(r.err("av1C marker bit is not set"));
    }
    let b1 = r.u8("seq_profile/seq_level_idx_0")?;
    let b2 = r.u8("seq_tier_0/bit depth")?;
    let profile = b1 >> 5;
    let level = b1 & 0x1f;
    let tier = if b2 & 0x80 != 0 { 'H' } else { 'M' };
    let high = b2 & 0x40 != 0;
    let twelve = b2 & 0x20 != 0;
    let depth = match (high, twelve, profile) {
        (true, true, 2) => 12,
        (true, _, _) => 10,
        _ => 8,
    };
    Ok(format!("av01.{profile}.{level:02}{tier}.{depth:02}"))
}

/// `vp09.PP.LL.DD` from the version-1 vpcC full box.
fn vp9(c: Data<'_>) -> Result<String, PackageError> {
    let mut r = c.reader("vpcC");
    let (version, _) = r.version_flags()?;
    if version != 1 {
        return Err(r.err(format!("vpcC version {version} is not 1")));
    }
    let profile = r.u8("profile")?;
    let level = r.u8("level")?;
    let depth = r.u8("bitDepth")? >> 4;
    Ok(format!("vp09.{profile:02}.{level:02}.{depth:02}"))
}

/// `mp4a.40.N` (N the AAC audio object type) or `mp4a.XX` for other object
/// types, read through esds's ES_Descriptor -> DecoderConfigDescriptor ->
/// DecoderSpecificInfo.
fn mp4a(c: Data<'_>) -> Result<String, PackageError> {
    let mut r = c.reader("esds");
    r.version_flags()?;
    let (tag, _) = descriptor(&mut r)?;
    if tag != 3 {
        return Err(r.err(format!(
            "esds holds descriptor tag {tag}, not an ES_Descriptor (3)"
        )));
    }
    r.skip(2, "ES_ID")?;
    let flags = r.u8("ES flags")?;
    if flags & 0x80 != 0 {
        r.skip(2, "dependsOn_ES_ID")?;
    }
    if flags & 0x40 != 0 {
        let n = r.u8("URLlength")?;
        r.skip(usize::from(n), "URLstring")?;
    }
    if flags & 0x20 != 0 {
        r.skip(2, "OCR_ES_Id")?;
    }
    let (tag, _) = descriptor(&mut r)?;
    if tag != 4 {
        return Err(r.err(format!(
            "ES_Descriptor holds tag {tag}, not a DecoderConfigDescriptor (4)"
        )));
    }
    let oti = r.u8("objectTypeIndication")?;
    if oti != 0x40 {
        return Ok(format!("mp4a.{oti:02X}"));
    }
    r.skip(12, "DecoderConfigDescriptor fields")?;
    let (tag, len) = descriptor(&mut r)?;
    if tag != 5 || len == 0 {
        return Err(r.err("AAC esds lacks its DecoderSpecificInfo (AudioSpecificConfig)"));
    }
    let a = r.u8("audioObjectType")?;
    let mut aot = a >> 3;
    if aot == 31 {
        let b = r.u8("audioObjectTypeExt")?;
        aot = 32 + (((a & 0x07) << 3) | (b >> 5));
    }
    Ok(format!("mp4a.40.{aot}"))
}

/// An MPEG-4 descriptor header: tag and length (1 to 4 bytes of 7 bits).
fn descriptor(r: &mut crate::boxes::Reader<'_>) -> Result<(u8, u32), PackageError> {
    let tag = r.u8("descriptor tag")?;
    let mut len = 0u32;
    for _ in 0..4 {
        let b = r.u8("descriptor length")?;
        len = (len << 7) | u32::from(b & 0x7f);
        if b & 0x80 == 0 {
            if len as usize > r.remaining() {
                return Err(r.err(format!(
                    "descriptor tag {tag} claims {len} bytes, more than its box holds"
                )));
            }
            return Ok((tag, len));
        }
    }
    Err(r.err("descriptor length runs past 4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    fn code(entry: &[u8; 4], child: &[u8; 4], payload: &[u8]) -> Result<String, PackageError> {
        let b = boxed(child, payload);
        let d = Data {
            bytes: &b,
            base: 0,
            file: Path::new("t.mp4"),
        };
        codec_string(Kind(*entry), d)
    }

    #[test]
    fn hevc_main_and_main10_strings() {
        // Main, compat 0x60000000, constraints B0 00.., level 93 (3.1).
        let p = [1, 0x01, 0x60, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 93];
        assert_eq!(code(b"hvc1", b"hvcC", &p).unwrap(), "hvc1.1.6.L93.B0");
        let p = [1, 0x22, 0x20, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 120];
        assert_eq!(code(b"hev1", b"hvcC", &p).unwrap(), "hev1.2.4.H120.90");
    }

    #[test]
    fn av1_vp9_and_aac_strings() {
        assert_eq!(
            code(b"av01", b"av1C", &[0x81, 0x08, 0x0c, 0]).unwrap(),
            "av01.0.08M.08"
        );
        assert_eq!(
            code(b"av01", b"av1C", &[0x81, 0x2d, 0xcc, 0]).unwrap(),
            "av01.1.13H.10"
        );
        assert_eq!(
            code(b"vp09", b"vpcC", &[1, 0, 0, 0, 2, 31, 0xa0]).unwrap(),
            "vp09.02.31.10"
        );
        // esds: ES_Descriptor(3) > DecoderConfig(4, oti 0x40) > DSI(5: AOT 2).
        let esds = [
            0, 0, 0, 0, 3, 22, 0, 1, 0, 4, 17, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 2,
            0x11, 0x90,
        ];
        assert_eq!(code(b"mp4a", b"esds", &esds).unwrap(), "mp4a.40.2");
    }

    #[test]
    fn unknown_entry_and_short_config_are_refused() {
        let e = code(b"mp4v", b"esds", &[]).unwrap_err().to_string();
        assert!(e.contains("'mp4v' is not a codec"), "{e}");
        let e = code(b"avc1", b"avcC", &[1, 0x64]).unwrap_err().to_string();
        assert!(
            e.contains("ends before its field profile_compatibility"),
            "{e}"
        );
        let e = code(b"avc1", b"hvcC", &[1]).unwrap_err().to_string();
        assert!(e.contains("'avc1' has no 'avcC' box"), "{e}");
    }
}
