//! SipHash-2-4 (Aumasson and Bernstein, 2012), the keyed hash RFC 9018 makes server cookies
//! with: 64 bits out of a 128-bit key. Small enough to keep here rather than add a crate.

/// The SipHash-2-4 of `message` under `key` (16 bytes, read as two little-endian words).
pub fn siphash_2_4(key: &[u8; 16], message: &[u8]) -> u64 {
    let mut k0 = [0u8; 8];
    let mut k1 = [0u8; 8];
    k0.copy_from_slice(&key[..8]);
    k1.copy_from_slice(&key[8..]);
    let (k0, k1) = (u64::from_le_bytes(k0), u64::from_le_bytes(k1));
    let mut state = State {
        v0: k0 ^ 0x736f_6d65_7073_6575,
        v1: k1 ^ 0x646f_7261_6e64_6f6d,
        v2: k0 ^ 0x6c79_6765_6e65_7261,
        v3: k1 ^ 0x7465_6462_7974_6573,
    };
    let mut blocks = message.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        state.compress(u64::from_le_bytes(word));
    }
    // The last word: the remaining bytes, and the message's length (mod 256) in the top byte.
    let mut last = [0u8; 8];
    let rest = blocks.remainder();
    last[..rest.len()].copy_from_slice(rest);
    last[7] = message.len() as u8;
    state.compress(u64::from_le_bytes(last));
    state.v2 ^= 0xff;
    for _ in 0..4 {
        state.round();
    }
    state.v0 ^ state.v1 ^ state.v2 ^ state.v3
}

struct State {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl State {
    /// Two rounds per message word: the "2" of SipHash-2-4.
    fn compress(&mut self, word: u64) {
        self.v3 ^= word;
        self.round();
        self.round();
        self.v0 ^= word;
    }

    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13);
        self.v1 ^= self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16);
        self.v3 ^= self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21);
        self.v3 ^= self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17);
        self.v1 ^= self.v2;
        self.v2 = self.v2.rotate_left(32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference key: bytes 0 to 15.
    const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    #[test]
    fn matches_the_reference_vectors() {
        let message: Vec<u8> = (0..64).collect();
        // From the reference implementation's vectors.h (vectors_sip64), as little-endian words.
        assert_eq!(siphash_2_4(&KEY, &message[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash_2_4(&KEY, &message[..1]), 0x74f8_39c5_93dc_67fd);
        // The paper's appendix A example: 15 bytes.
        assert_eq!(siphash_2_4(&KEY, &message[..15]), 0xa129_ca61_49be_45e5);
    }

    #[test]
    #[allow(deprecated)] // std's SipHasher is SipHash-2-4: a second, independent implementation
    fn agrees_with_the_standard_library() {
        use std::hash::Hasher;
        let message: Vec<u8> = (0..64).map(|byte: u8| byte.wrapping_mul(37)).collect();
        for length in 0..message.len() {
            let mut hasher = std::hash::SipHasher::new_with_keys(
                u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]),
                u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]),
            );
            hasher.write(&message[..length]);
            assert_eq!(
                siphash_2_4(&KEY, &message[..length]),
                hasher.finish(),
                "{length}"
            );
        }
    }
}
