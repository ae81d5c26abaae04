//! Arbitrary bytes as a TCP stream, cut into reads of arbitrary sizes: the framer hands out
//! exactly the messages the stream holds, in order, never panics, and its buffer stays bounded.
#![no_main]

use apidns::server::framing::{FrameError, Framer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the read sizes, the rest is the stream.
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let mut framer = Framer::new();
    let mut handed_out = Vec::new();
    let mut at = 0;
    let mut step = usize::from(seed) + 1;
    let mut zero_length = false;
    'reads: while at < stream.len() {
        let end = (at + step).min(stream.len());
        framer.extend(&stream[at..end]);
        at = end;
        step = step * 7 % 257 + 1;
        loop {
            match framer.next_message() {
                Ok(Some(message)) => {
                    assert!(!message.is_empty());
                    handed_out.extend_from_slice(&(message.len() as u16).to_be_bytes());
                    handed_out.extend_from_slice(message);
                }
                Ok(None) => break,
                Err(FrameError::ZeroLength) => {
                    zero_length = true;
                    break 'reads;
                }
            }
        }
        assert!(framer.buffered() <= 2 + 65_535 + 257);
    }
    // What was handed out is the stream's beginning, re-framed byte for byte.
    assert_eq!(handed_out[..], stream[..handed_out.len()]);
    if zero_length {
        assert_eq!(stream[handed_out.len()..handed_out.len() + 2], [0, 0]);
    } else {
        // The rest is one partial message.
        let rest = &stream[handed_out.len()..];
        assert_eq!(framer.has_partial_message(), !rest.is_empty());
        if let [high, low, body @ ..] = rest {
            assert!(body.len() < usize::from(u16::from_be_bytes([*high, *low])));
        }
    }
});
