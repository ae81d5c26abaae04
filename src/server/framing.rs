//! Splitting a TCP byte stream into DNS messages: each is a two-byte length, then that many bytes
//! (RFC 1035 section 4.2.2). Pure and synchronous, so that it can be tested and fuzzed without a
//! socket; `tcp` feeds it whatever each read returns.

/// The bytes received on one connection that have not been handed out as messages yet.
///
/// Complete messages are handed out before more is read, so the buffer never holds more than one
/// partial message plus one read's worth of bytes: at most 2 + 65535 + the read size.
#[derive(Debug, Default)]
pub struct Framer {
    buffer: Vec<u8>,
    /// Bytes at the front of `buffer` already handed out; removed before the next append.
    consumed: usize,
}

/// A stream that is not DNS over TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A length prefix of zero: no DNS message is empty, so the peer is not speaking DNS.
    ZeroLength,
}

impl Framer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes just read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.consumed > 0 {
            self.buffer.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed first.
    pub fn next_message(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let pending = self.buffer.get(self.consumed..).unwrap_or_default();
        let [high, low, rest @ ..] = pending else {
            return Ok(None);
        };
        let length = usize::from(u16::from_be_bytes([*high, *low]));
        if length == 0 {
            return Err(FrameError::ZeroLength);
        }
        if rest.len() < length {
            return Ok(None);
        }
        let start = self.consumed + 2;
        self.consumed = start + length;
        Ok(self.buffer.get(start..self.consumed))
    }

    /// True when part of a message has arrived: the client is in the middle of sending one.
    pub fn has_partial_message(&self) -> bool {
        self.buffer.len() > self.consumed
    }

    /// Bytes held, handed out or not: bounded as the type's documentation says.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}

/// A message with its two-byte length prefix, ready to write; `None` when it is too long to frame.
pub fn frame(message: &[u8]) -> Option<Vec<u8>> {
    let length = u16::try_from(message.len()).ok()?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    Some(framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(framer: &mut Framer) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut messages = Vec::new();
        while let Some(message) = framer.next_message()? {
            messages.push(message.to_vec());
        }
        Ok(messages)
    }

    #[test]
    fn messages_split_across_reads_are_reassembled() {
        let mut stream = frame(b"first").unwrap();
        stream.extend(frame(b"second message").unwrap());
        stream.extend(frame(&[7; 300]).unwrap());
        for chunk_size in [1, 2, 3, 7, 64, stream.len()] {
            let mut framer = Framer::new();
            let mut messages = Vec::new();
            for chunk in stream.chunks(chunk_size) {
                framer.extend(chunk);
                messages.extend(drain(&mut framer).unwrap());
            }
            assert_eq!(
                messages,
                [b"first".to_vec(), b"second message".to_vec(), vec![7; 300]],
                "chunks of {chunk_size}"
            );
            assert!(!framer.has_partial_message());
        }
    }

    #[test]
    fn a_length_prefix_alone_is_a_partial_message() {
        let mut framer = Framer::new();
        assert!(!framer.has_partial_message());
        framer.extend(&[0]);
        assert!(framer.has_partial_message());
        framer.extend(&[3, b'a']);
        assert_eq!(framer.next_message(), Ok(None));
        assert!(framer.has_partial_message());
        framer.extend(b"bc");
        assert_eq!(framer.next_message(), Ok(Some(&b"abc"[..])));
        assert!(!framer.has_partial_message());
    }

    #[test]
    fn zero_length_is_an_error() {
        let mut framer = Framer::new();
        framer.extend(&[0, 1, 9, 0, 0]);
        assert_eq!(framer.next_message(), Ok(Some(&[9][..])));
        assert_eq!(framer.next_message(), Err(FrameError::ZeroLength));
    }

    #[test]
    fn the_largest_message_fits_and_the_buffer_stays_bounded() {
        let message = vec![0xab; 65_535];
        let stream = frame(&message).unwrap();
        let mut framer = Framer::new();
        let mut found = 0;
        for chunk in stream
            .chunks(4096)
            .cycle()
            .take(stream.len().div_ceil(4096) * 5)
        {
            framer.extend(chunk);
            while let Some(got) = framer.next_message().unwrap() {
                assert_eq!(got.len(), 65_535);
                found += 1;
            }
            assert!(framer.buffered() <= 2 + 65_535 + 4096);
        }
        assert_eq!(found, 5);
        assert!(frame(&vec![0; 65_536]).is_none());
    }
}
