//! How a binary build's upload travels from `slip start-build --from-*` to the build pod's
//! `receive` container: through the API server's `attach` to the container's standard input.
//!
//! The bytes are framed, so that the receiver can tell a finished upload from one that was cut
//! off (the client killed, the connection lost: with `stdinOnce` the container then reads the end
//! of its input early). A stream is [`MAGIC`], then frames of a 4-byte big-endian length (1 to
//! [`MAX_FRAME`]) and that many bytes, then a frame of length 0 and the total number of bytes as
//! 8 bytes big-endian. Written here because the format is Slipway's own: both sides share it.

use std::io::{self, Read, Write};

/// The first bytes of an upload (and its version).
pub const MAGIC: &[u8] = b"SLIPWAY-BINARY/1\n";
/// The largest frame.
pub const MAX_FRAME: usize = 1 << 20;

/// Frames what is written to it; [`FrameWriter::finish`] writes the end. Dropped without
/// `finish`, the stream stays unfinished and the receiver fails the build.
pub struct FrameWriter<W: Write> {
    inner: W,
    total: u64,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(mut inner: W) -> io::Result<Self> {
        inner.write_all(MAGIC)?;
        Ok(Self { inner, total: 0 })
    }

    /// Bytes written so far (without framing).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Writes the end of the stream and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&0u32.to_be_bytes())?;
        self.inner.write_all(&self.total.to_be_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min(MAX_FRAME);
        let len = u32::try_from(n).map_err(io::Error::other)?;
        self.inner.write_all(&len.to_be_bytes())?;
        self.inner.write_all(&buf[..n])?;
        self.total += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why a framed stream could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The input ended before the end of the stream: the upload was interrupted.
    Incomplete { received: u64 },
    /// Not a framed upload, or a frame that breaks the format.
    Malformed(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Incomplete { received } => write!(
                f,
                "the upload ended after {received} bytes without its end: it was interrupted"
            ),
            Self::Malformed(why) => write!(f, "the upload is not in Slipway's binary format: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<FrameError> for io::Error {
    fn from(e: FrameError) -> Self {
        let kind = match e {
            FrameError::Incomplete { .. } => io::ErrorKind::UnexpectedEof,
            FrameError::Malformed(_) => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// Reads the bytes of a framed stream; the end of the data is the end of the stream, and an
/// input that stops before it is an error ([`FrameError::Incomplete`] inside the `io::Error`).
pub struct FrameReader<R: Read> {
    inner: R,
    started: bool,
    /// Bytes left in the current frame.
    left: usize,
    received: u64,
    ended: bool,
}

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            started: false,
            left: 0,
            received: 0,
            ended: false,
        }
    }

    /// Bytes of data read so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether the end of the stream was read.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Reads exactly `buf.len()` bytes, or says the upload was cut off.
    fn exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => {
                    return Err(FrameError::Incomplete {
                        received: self.received,
                    }
                    .into());
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn next_frame(&mut self) -> io::Result<()> {
        if !self.started {
            let mut magic = [0u8; MAGIC.len()];
            self.exact(&mut magic)?;
            if magic != MAGIC {
                return Err(FrameError::Malformed("it does not start with the format's mark".into()).into());
            }
            self.started = true;
        }
        let mut len = [0u8; 4];
        self.exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(
                FrameError::Malformed(format!("a frame of {len} bytes (at most {MAX_FRAME})")).into(),
            );
        }
        if len == 0 {
            let mut total = [0u8; 8];
            self.exact(&mut total)?;
            let total = u64::from_be_bytes(total);
            if total != self.received {
                return Err(FrameError::Malformed(format!(
                    "its end counts {total} bytes, {} arrived",
                    self.received
                ))
                .into());
            }
            self.ended = true;
        }
        self.left = len;
        Ok(())
    }
}

impl<R: Read> Read for FrameReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.left == 0 {
            if self.ended {
                return Ok(0);
            }
            self.next_frame()?;
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(FrameError::Incomplete {
                received: self.received,
            }
            .into());
        }
        self.left -= n;
        self.received += n as u64;
        Ok(n)
    }
}

/// The [`FrameError`] inside an `io::Error` from a [`FrameReader`], if that is what it is.
pub fn frame_error(e: &io::Error) -> Option<&FrameError> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<FrameError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(data: &[u8], chunk: usize) -> Vec<u8> {
        let mut w = FrameWriter::new(Vec::new()).unwrap();
        for c in data.chunks(chunk.max(1)) {
            w.write_all(c).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn what_is_written_is_read_back_whatever_the_chunks() {
        let data: Vec<u8> = (0..3 * MAX_FRAME + 17).map(|i| (i % 251) as u8).collect();
        for chunk in [1, 7, 4096, MAX_FRAME + 5] {
            let stream = if chunk == 1 {
                framed(&data[..300], chunk)
            } else {
                framed(&data, chunk)
            };
            let mut r = FrameReader::new(&stream[..]);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            let expected = if chunk == 1 { &data[..300] } else { &data[..] };
            assert_eq!(out, expected);
            assert!(r.ended());
            assert_eq!(r.received(), expected.len() as u64);
        }
    }

    #[test]
    fn an_empty_upload_is_complete() {
        let stream = framed(&[], 10);
        let mut out = Vec::new();
        FrameReader::new(&stream[..]).read_to_end(&mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn a_stream_cut_anywhere_is_incomplete_never_short_data() {
        let data = vec![7u8; 10_000];
        let stream = framed(&data, 3000);
        for cut in [
            0,
            5,
            MAGIC.len(),
            MAGIC.len() + 2,
            3000,
            stream.len() - 8,
            stream.len() - 1,
        ] {
            let mut out = Vec::new();
            let err = FrameReader::new(&stream[..cut])
                .read_to_end(&mut out)
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
            assert!(
                matches!(frame_error(&err), Some(FrameError::Incomplete { .. })),
                "cut at {cut}"
            );
            assert!(err.to_string().contains("interrupted"), "{err}");
        }
    }

    #[test]
    fn other_input_is_malformed() {
        let mut out = Vec::new();
        let err = FrameReader::new(&b"PK\x03\x04 a zip file, long enough to fill the mark"[..])
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(
            matches!(frame_error(&err), Some(FrameError::Malformed(_))),
            "{err}"
        );
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        let err = FrameReader::new(&huge[..]).read_to_end(&mut out).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
        let mut lying = framed(b"abc", 3);
        let n = lying.len();
        lying[n - 1] = 9;
        let err = FrameReader::new(&lying[..]).read_to_end(&mut out).unwrap_err();
        assert!(err.to_string().contains("counts 9 bytes, 3 arrived"), "{err}");
    }
}
