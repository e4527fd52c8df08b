//! Reading WebSocket messages out of bytes the proxy has already relayed.
//!
//! The proxy forwards a relayed WebSocket's bytes as they come, unchanged
//! (so the client gets the server's frames byte for byte, and nothing waits
//! for a check), and reads a copy of them here: RFC 6455 frames, unmasked
//! when the client masked them, fragments joined, text messages handed to
//! the checks. A frame split across reads waits for the rest; one that
//! arrives whole in a read is read in place, without a copy.
//!
//! Bounds: a message larger than [`MAX_MESSAGE`] (or a frame using a
//! reserved bit: an extension the proxy did not let through) ends the
//! reading of that connection with a reason, which the proxy reports as a
//! violation; the relaying itself goes on.

/// The largest message read (bytes); larger ones end the reading.
pub const MAX_MESSAGE: usize = 16 << 20;

/// One connection direction's reader.
#[derive(Debug, Default)]
pub struct Frames {
    /// Bytes of a frame not yet complete.
    pending: Vec<u8>,
    /// A fragmented message so far: whether it is text, and its bytes.
    fragments: Option<(bool, Vec<u8>)>,
    /// Why reading stopped, once it has.
    stopped: Option<String>,
}

/// A frame's header, parsed.
struct Head {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    /// Header length and payload length.
    header: usize,
    len: usize,
}

/// `Ok(None)`: not enough bytes yet.
fn head(b: &[u8]) -> Result<Option<Head>, String> {
    if b.len() < 2 {
        return Ok(None);
    }
    if b[0] & 0x70 != 0 {
        return Err("a frame uses a reserved bit (a WebSocket extension): cannot read it".into());
    }
    let (mut header, len) = match b[1] & 0x7f {
        126 if b.len() < 4 => return Ok(None),
        126 => (4, u16::from_be_bytes([b[2], b[3]]) as usize),
        127 if b.len() < 10 => return Ok(None),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[2..10]);
            (
                10,
                usize::try_from(u64::from_be_bytes(n)).unwrap_or(usize::MAX),
            )
        }
        n => (2, n as usize),
    };
    if len > MAX_MESSAGE {
        return Err(format!(
            "a frame of {len} bytes is larger than the {MAX_MESSAGE} bytes the proxy reads"
        ));
    }
    let mask = if b[1] & 0x80 != 0 {
        if b.len() < header + 4 {
            return Ok(None);
        }
        let m = [b[header], b[header + 1], b[header + 2], b[header + 3]];
        header += 4;
        Some(m)
    } else {
        None
    };
    Ok(Some(Head {
        fin: b[0] & 0x80 != 0,
        opcode: b[0] & 0x0f,
        mask,
        header,
        len,
    }))
}

impl Frames {
    /// Reads the frames completed by `bytes`, calling `text` with each text
    /// message. `Err` (once) when the connection can no longer be read.
    pub fn feed(&mut self, bytes: &[u8], mut text: impl FnMut(&str)) -> Result<(), String> {
        if self.stopped.is_some() {
            return Ok(());
        }
        let result = if self.pending.is_empty() {
            let used = self.read(bytes, &mut text);
            used.map(|n| self.pending.extend_from_slice(&bytes[n..]))
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(bytes);
            let used = self.read(&pending, &mut text);
            used.map(|n| {
                pending.drain(..n);
                self.pending = pending;
            })
        };
        if let Err(why) = &result {
            self.stopped = Some(why.clone());
            self.pending = Vec::new();
            self.fragments = None;
        }
        result
    }

    /// Reads whole frames from the front of `b`; returns the bytes used.
    fn read(&mut self, b: &[u8], text: &mut impl FnMut(&str)) -> Result<usize, String> {
        let mut at = 0;
        let mut scratch = Vec::new();
        while let Some(h) = head(&b[at..])? {
            let end = at + h.header + h.len;
            if end > b.len() {
                break;
            }
            let raw = &b[at + h.header..end];
            at = end;
            let payload: &[u8] = match h.mask {
                None => raw,
                Some(m) => {
                    scratch.clear();
                    scratch.extend(raw.iter().enumerate().map(|(i, x)| x ^ m[i % 4]));
                    &scratch
                }
            };
            match (h.opcode, h.fin) {
                // Control frames (close, ping, pong) carry nothing checked.
                (8..=15, _) => {}
                (1, true) => text(&utf8(payload)),
                (2, true) => {}
                (1 | 2, false) => self.fragments = Some((h.opcode == 1, payload.to_vec())),
                (0, fin) => {
                    let Some((is_text, mut so_far)) = self.fragments.take() else {
                        return Err("a continuation frame without a message to continue".into());
                    };
                    if so_far.len() + payload.len() > MAX_MESSAGE {
                        return Err(format!(
                            "a message larger than the {MAX_MESSAGE} bytes the proxy reads"
                        ));
                    }
                    so_far.extend_from_slice(payload);
                    if !fin {
                        self.fragments = Some((is_text, so_far));
                    } else if is_text {
                        text(&utf8(&so_far));
                    }
                }
                (op, _) => return Err(format!("a frame with the reserved opcode {op}")),
            }
        }
        Ok(at)
    }
}

/// A text message's payload (the checks name invalid UTF-8 as a
/// malformed frame; the lossy form keeps what can be read).
fn utf8(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => s.into(),
        Err(_) => String::from_utf8_lossy(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n < 65536 => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            None => f.extend_from_slice(payload),
            Some(k) => {
                f.extend_from_slice(&k);
                f.extend(payload.iter().enumerate().map(|(i, x)| x ^ k[i % 4]));
            }
        }
        f
    }

    fn all(reader: &mut Frames, chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        for c in chunks {
            reader
                .feed(c, |t| out.push(t.to_string()))
                .expect("readable");
        }
        out
    }

    #[test]
    fn masked_unmasked_long_and_fragmented_messages_are_read_whole() {
        let long = "x".repeat(70_000);
        let mut bytes = frame(1, true, b"42[\"a\"]", None);
        bytes.extend(frame(1, true, b"2", Some([1, 2, 3, 4])));
        bytes.extend(frame(9, true, b"ping", None));
        bytes.extend(frame(1, true, long.as_bytes(), None));
        bytes.extend(frame(1, false, b"hel", Some([9, 8, 7, 6])));
        bytes.extend(frame(10, true, b"", None));
        bytes.extend(frame(0, true, b"lo", Some([5, 5, 5, 5])));
        let expected = vec!["42[\"a\"]".to_string(), "2".into(), long, "hello".into()];
        assert_eq!(all(&mut Frames::default(), &[&bytes]), expected);
        // Split at every point: the same messages.
        for cut in [1, 2, 3, 9, 12, 70_010, bytes.len() - 1] {
            let got = all(&mut Frames::default(), &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(got, expected, "split at {cut}");
        }
        // One byte at a time.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(all(&mut Frames::default(), &singles), expected);
    }

    #[test]
    fn an_extension_frame_or_an_oversized_message_stops_reading_with_a_reason() {
        let mut r = Frames::default();
        let mut compressed = frame(1, true, b"abc", None);
        compressed[0] |= 0x40;
        let err = r.feed(&compressed, |_| {}).expect_err("RSV1 is refused");
        assert!(err.contains("reserved bit"), "{err}");
        assert!(
            r.feed(&frame(1, true, b"later", None), |_| panic!(
                "read after a stop"
            ))
            .is_ok()
        );

        let mut huge = vec![0x81, 127];
        huge.extend_from_slice(&((MAX_MESSAGE as u64) + 1).to_be_bytes());
        let err = Frames::default()
            .feed(&huge, |_| {})
            .expect_err("too large");
        assert!(err.contains("larger than"), "{err}");
    }
}
