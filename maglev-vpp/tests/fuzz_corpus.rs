//! The fuzz entry over a few hundred mutations of the captured frames: a
//! deterministic stand-in for `cargo fuzz run vpp_api_decode` in every test
//! run. Nothing may panic.

mod common;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, frame: &[u8]) -> Vec<u8> {
    let mut v = frame.to_vec();
    match rng.below(5) {
        0 => {
            // Flip a few bytes.
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
        }
        1 => v.truncate(rng.below(v.len())),
        2 => v.extend((0..rng.below(40)).map(|_| rng.next() as u8)),
        3 => {
            // Lie about a length field: the frame's, or a u16/u32 inside.
            let i = rng.below(v.len().saturating_sub(4));
            let x = rng.next() as u32;
            v[i..i + 4].copy_from_slice(&x.to_be_bytes());
        }
        _ => {
            let i = rng.below(v.len());
            let j = rng.below(v.len());
            v.swap(i, j);
        }
    }
    v
}

#[test]
fn mutated_captured_frames_never_panic() {
    let frames = common::capture();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut n = 0;
    for f in &frames {
        maglev_vpp::fuzzing::decode_stream(&f.bytes);
        maglev_vpp::fuzzing::decode_payload(f.payload());
        let rounds = if f.bytes.len() > 4096 { 4 } else { 12 };
        for _ in 0..rounds {
            let m = mutate(&mut rng, &f.bytes);
            maglev_vpp::fuzzing::decode_stream(&m);
            if m.len() > 16 {
                maglev_vpp::fuzzing::decode_payload(&m[16..]);
            }
            n += 1;
        }
    }
    // A whole conversation as one stream, then random noise.
    let stream: Vec<u8> = frames.iter().flat_map(|f| f.bytes.clone()).collect();
    maglev_vpp::fuzzing::decode_stream(&stream);
    for _ in 0..100 {
        let noise: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
        maglev_vpp::fuzzing::decode_stream(&noise);
        maglev_vpp::fuzzing::decode_payload(&noise);
        n += 1;
    }
    assert!(n >= 500, "{n} inputs");
}
