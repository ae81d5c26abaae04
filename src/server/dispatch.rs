//! Opcode dispatch at the server's edge (as hickory's `Catalog::handle_request` does): the
//! listener reads the header and hands a QUERY (and anything else that is not an UPDATE) to the
//! answering code in `crate::dns`, and an UPDATE to `crate::update`. The answering code never
//! sees an UPDATE, and so never waits.

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To `crate::dns`: queries, and everything it refuses or drops (other opcodes, responses,
    /// fragments of a header).
    Answer,
    /// To `crate::update`: a request (QR clear) whose header says opcode UPDATE (RFC 2136).
    Update,
}

/// The header's opcode, in bits 3-6 of its third byte.
const OPCODE_UPDATE: u8 = 5;
/// The smallest message: a header.
const HEADER_LEN: usize = 12;

/// Where `message` goes, from its header alone.
pub fn route(message: &[u8]) -> Route {
    let Some(&flags) = message.get(2) else {
        return Route::Answer;
    };
    let is_response = flags & 0x80 != 0;
    let opcode = (flags >> 3) & 0x0f;
    if message.len() >= HEADER_LEN && !is_response && opcode == OPCODE_UPDATE {
        Route::Update
    } else {
        Route::Answer
    }
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
        assert_eq!(route(&header), Route::Answer);
    }
}
