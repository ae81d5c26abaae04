//! Opcode dispatch at the server's edge (as hickory's `Catalog::handle_request` does): the
//! listener reads the header and hands a QUERY (and anything else that is not an UPDATE) to the
//! answering code in `crate::dns`, an UPDATE to `crate::update`, and a zone transfer request
//! (AXFR, IXFR) to `crate::transfer` when it comes over TCP, and a NOTIFY to
//! `crate::transfer::secondary`. The answering code never sees an
//! UPDATE, and so never waits.

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To `crate::dns`: queries, and everything it refuses or drops (other opcodes, responses,
    /// fragments of a header).
    Answer,
    /// To `crate::update`: a request (QR clear) whose header says opcode UPDATE (RFC 2136).
    Update,
    /// To `crate::transfer` over TCP: a QUERY request whose first question asks for AXFR or
    /// IXFR. Over UDP it is answered as any query (REFUSED: transfers need TCP).
    Transfer,
    /// To `crate::transfer::secondary`: a NOTIFY request (RFC 1996) from a secondary zone's
    /// primary, over UDP or TCP.
    Notify,
}

/// The header's opcode, in bits 3-6 of its third byte.
const OPCODE_UPDATE: u8 = 5;
const OPCODE_QUERY: u8 = 0;
const OPCODE_NOTIFY: u8 = 4;
const TYPE_IXFR: u16 = 251;
const TYPE_AXFR: u16 = 252;
/// The smallest message: a header.
const HEADER_LEN: usize = 12;

/// Where `message` goes, from its header alone.
pub fn route(message: &[u8]) -> Route {
    let Some(&flags) = message.get(2) else {
        return Route::Answer;
    };
    let is_response = flags & 0x80 != 0;
    let opcode = (flags >> 3) & 0x0f;
    if message.len() < HEADER_LEN || is_response {
        return Route::Answer;
    }
    match opcode {
        OPCODE_UPDATE => Route::Update,
        OPCODE_QUERY if matches!(first_qtype(message), Some(TYPE_AXFR | TYPE_IXFR)) => {
            Route::Transfer
        }
        OPCODE_NOTIFY => Route::Notify,
        _ => Route::Answer,
    }
}

/// The type of the first question, read past its name's labels; `None` when there is no whole
/// question.
fn first_qtype(message: &[u8]) -> Option<u16> {
    let questions = u16::from_be_bytes([*message.get(4)?, *message.get(5)?]);
    if questions == 0 {
        return None;
    }
    let mut at = HEADER_LEN;
    loop {
        let length = *message.get(at)?;
        if length == 0 {
            at += 1;
            break;
        }
        if length & 0xc0 != 0 {
            // A compression pointer (or a reserved label type) ends the name.
            at += 2;
            break;
        }
        at += 1 + usize::from(length);
    }
    Some(u16::from_be_bytes([
        *message.get(at)?,
        *message.get(at + 1)?,
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_update_requests_go_to_update() {
        let mut header = [0u8; 12];
        assert_eq!(route(&header), Route::Answer);
        header[2] = OPCODE_UPDATE << 3;
        assert_eq!(route(&header), Route::Update);
        assert_eq!(route(&header[..11]), Route::Answer);
        header[2] |= 0x80;
        assert_eq!(route(&header), Route::Answer);
        header[2] = 4 << 3;
        assert_eq!(route(&header), Route::Notify);
        header[2] = 2 << 3;
        assert_eq!(route(&header), Route::Answer);
    }

    #[test]
    fn axfr_and_ixfr_queries_go_to_transfer() {
        let question = |qtype: u16| {
            let mut message = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            message.extend_from_slice(b"\x03k8s\x07example\x03com\x00");
            message.extend_from_slice(&qtype.to_be_bytes());
            message.extend_from_slice(&1u16.to_be_bytes());
            message
        };
        assert_eq!(route(&question(TYPE_AXFR)), Route::Transfer);
        assert_eq!(route(&question(TYPE_IXFR)), Route::Transfer);
        assert_eq!(route(&question(1)), Route::Answer);
        let cut = question(TYPE_AXFR);
        assert_eq!(route(&cut[..cut.len() - 3]), Route::Answer);
        let mut no_questions = question(TYPE_AXFR);
        no_questions[5] = 0;
        assert_eq!(route(&no_questions), Route::Answer);
    }
}
