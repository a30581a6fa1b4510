//! ISO BMFF box reading with every size checked against what surrounds it.
//!
//! The input is treated as hostile: a box size of 0 (to the end), 1 (a
//! 64-bit size follows), one smaller than its own header or larger than its
//! parent are all handled without panicking. Boxes are only ever descended
//! along fixed paths (`moov/trak/mdia/...`), so nesting depth is bounded by
//! the code itself, never by the file.

use crate::error::PackageError;
use std::fmt;
use std::path::Path;

/// A four-character box type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kind(pub [u8; 4]);

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            let c = if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// One box header: where the box starts and how big it and its header are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub kind: Kind,
    pub header_len: u64,
    /// Whole box, header included.
    pub size: u64,
}

/// Parses the header at the start of `buf` for a box that may extend at
/// most `avail` bytes (to its parent's end). `buf` holds up to 16 bytes.
pub(crate) fn parse_header(buf: &[u8], avail: u64) -> Result<Header, String> {
    if buf.len() < 8 || avail < 8 {
        return Err(format!(
            "{} bytes left, too few for a box header (truncated file?)",
            avail.min(buf.len() as u64)
        ));
    }
    let size32 = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let kind = Kind([buf[4], buf[5], buf[6], buf[7]]);
    let (header_len, size) = match size32 {
        0 => (8, avail),
        1 => {
            if buf.len() < 16 || avail < 16 {
                return Err(format!(
                    "box '{kind}' has a 64-bit size but the header is cut short"
                ));
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[8..16]);
            (16, u64::from_be_bytes(b))
        }
        n => (8, u64::from(n)),
    };
    if size < header_len {
        return Err(format!(
            "box '{kind}' claims {size} bytes, less than its {header_len}-byte header"
        ));
    }
    if size > avail {
        return Err(format!(
            "box '{kind}' claims {size} bytes but only {avail} remain in its parent (truncated or corrupt file)"
        ));
    }
    Ok(Header {
        kind,
        header_len,
        size,
    })
}

/// A box payload (or any byte range) held in memory, with the file offset of
/// its first byte so errors can point into the file.
#[derive(Clone, Copy)]
pub(crate) struct Data<'a> {
    pub bytes: &'a [u8],
    pub base: u64,
    pub file: &'a Path,
}

impl<'a> Data<'a> {
    pub fn err(&self, at: usize, what: impl Into<String>) -> PackageError {
        PackageError::malformed(self.file, self.base + at as u64, what)
    }

    /// The child boxes of this payload, in order; a malformed child ends the
    /// iteration with an error.
    pub fn boxes(self) -> Boxes<'a> {
        Boxes {
            data: self,
            pos: 0,
            failed: false,
        }
    }

    /// The first child of type `kind`, if any.
    pub fn find(self, kind: &[u8; 4]) -> Result<Option<(Header, Data<'a>)>, PackageError> {
        for b in self.boxes() {
            let (h, d) = b?;
            if &h.kind.0 == kind {
                return Ok(Some((h, d)));
            }
        }
        Ok(None)
    }

    /// The first child of type `kind`, or an error naming what lacks it.
    pub fn require(self, kind: &[u8; 4], parent: &str) -> Result<Data<'a>, PackageError> {
        match self.find(kind)? {
            Some((_, d)) => Ok(d),
            None => Err(self.err(0, format!("'{parent}' has no '{}' box", Kind(*kind)))),
        }
    }

    /// A field reader over this payload; `kind` names the box in errors.
    pub fn reader(self, kind: &'static str) -> Reader<'a> {
        Reader {
            data: self,
            pos: 0,
            kind,
        }
    }

    /// The payload from byte `from` on (saturating at the end).
    pub fn tail(self, from: usize) -> Data<'a> {
        let from = from.min(self.bytes.len());
        Data {
            bytes: &self.bytes[from..],
            base: self.base + from as u64,
            file: self.file,
        }
    }
}

/// Iterator over the child boxes of a [`Data`].
pub(crate) struct Boxes<'a> {
    data: Data<'a>,
    pos: usize,
    failed: bool,
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<(Header, Data<'a>), PackageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.bytes.len() {
            return None;
        }
        let rest = &self.data.bytes[self.pos..];
        let h = match parse_header(&rest[..rest.len().min(16)], rest.len() as u64) {
            Ok(h) => h,
            Err(what) => {
                self.failed = true;
                return Some(Err(self.data.err(self.pos, what)));
            }
        };
        // Both fit in `rest` (checked by parse_header against its length).
        let start = self.pos + h.header_len as usize;
        let end = self.pos + h.size as usize;
        self.pos = end;
        Some(Ok((
            h,
            Data {
                bytes: &self.data.bytes[start..end],
                base: self.data.base + start as u64,
                file: self.data.file,
            },
        )))
    }
}

/// Big-endian field reader that errors (never panics) at the end of a box.
pub(crate) struct Reader<'a> {
    data: Data<'a>,
    pos: usize,
    kind: &'static str,
}

impl Reader<'_> {
    pub fn take(&mut self, n: usize, field: &str) -> Result<&[u8], PackageError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.data.bytes.len() => {
                let s = &self.data.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => Err(self.data.err(
                self.pos,
                format!("box '{}' ends before its field {field}", self.kind),
            )),
        }
    }

    pub fn skip(&mut self, n: usize, field: &str) -> Result<(), PackageError> {
        self.take(n, field).map(|_| ())
    }

    pub fn u8(&mut self, field: &str) -> Result<u8, PackageError> {
        Ok(self.take(1, field)?[0])
    }

    pub fn u16(&mut self, field: &str) -> Result<u16, PackageError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, field: &str) -> Result<u32, PackageError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self, field: &str) -> Result<u64, PackageError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Version (8 bits) and flags (24 bits) of a full box.
    pub fn version_flags(&mut self) -> Result<(u8, u32), PackageError> {
        let v = self.u32("version/flags")?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.bytes.len() - self.pos
    }

    pub fn err(&self, what: impl Into<String>) -> PackageError {
        self.data.err(self.pos, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_sizes_zero_one_small_and_large() {
        let mut b = [0u8; 16];
        b[4..8].copy_from_slice(b"mdat");
        // 0: to the parent's end.
        assert_eq!(parse_header(&b, 100).unwrap().size, 100);
        // 1: 64-bit size.
        b[3] = 1;
        b[15] = 40;
        let h = parse_header(&b, 100).unwrap();
        assert_eq!((h.header_len, h.size), (16, 40));
        b[15] = 8; // smaller than the 16-byte header
        assert!(parse_header(&b, 100)
            .unwrap_err()
            .contains("less than its 16-byte header"));
        // 32-bit size bigger than what remains.
        b[3] = 200;
        assert!(parse_header(&b, 100)
            .unwrap_err()
            .contains("only 100 remain"));
        b[3] = 4;
        assert!(parse_header(&b, 100)
            .unwrap_err()
            .contains("less than its 8-byte"));
        assert!(parse_header(&b[..5], 5).unwrap_err().contains("too few"));
    }

    #[test]
    fn reader_refuses_reads_past_the_box() {
        let bytes = [0u8, 1, 2];
        let d = Data {
            bytes: &bytes,
            base: 10,
            file: Path::new("x.mp4"),
        };
        let mut r = d.reader("tkhd");
        assert_eq!(r.u16("a").unwrap(), 1);
        let e = r.u32("width").unwrap_err().to_string();
        assert_eq!(
            e,
            "x.mp4: offset 12: box 'tkhd' ends before its field width"
        );
    }
}
