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

/// The `show lb vips verbose` texts of the capture.
fn captured_vips_texts() -> Vec<String> {
    use maglev_vpp::api::messages::{CliInbandReply, decode_message};
    common::capture()
        .iter()
        .filter(|f| !f.to_server)
        .filter_map(|f| decode_message::<CliInbandReply>(f.payload()).ok())
        .map(|(_, m)| m.reply)
        .filter(|t| t.contains("new_size:"))
        .collect()
}

/// Crashes the `vips_text` fuzz target found, and their neighbours.
#[test]
fn vips_text_crashes_stay_fixed() {
    let huge = [
        // `Vec::reserve(usize::MAX)`: "capacity overflow".
        format!(" ip4-gre4 [1] 10.0.0.1/32\n  #as:{}\n", usize::MAX),
        format!(" ip4-gre4 [1] 10.0.0.1/32\n  #as:{}\n", u64::MAX / 2),
        // Twice in one VIP, then real ASes.
        format!(
            " ip6-gre6 [2] 2001:db8::1/128\n  #as:{0}\n  #as:{0}\n    ::1 weight:1 buckets:1 flows:0 dpo:1 used\n",
            usize::MAX
        ),
    ];
    for text in &huge {
        maglev_vpp::fuzzing::parse_vips_text(text.as_bytes());
        let vips = maglev_vpp::lb::vips_text::parse(text).expect("`#as` is only a hint");
        assert_eq!(vips.len(), 1);
        assert!(vips[0].ases.capacity() <= text.len(), "{text:?}");
    }
    assert_eq!(
        maglev_vpp::lb::vips_text::parse(
            " ip4-gre4 [1] 10.0.0.1/32\n  #as:99999999999999999999999\n"
        )
        .unwrap_err()
        .problem,
        "bad #as"
    );
}

/// The `vips_text` entry over line-level mutations of the captured `show
/// lb vips verbose` replies: a deterministic stand-in for `cargo fuzz run
/// vips_text`.
#[test]
fn mutated_captured_vips_texts_never_panic() {
    let texts = captured_vips_texts();
    assert!(!texts.is_empty(), "the capture has `show lb vips verbose`");
    let numbers = [
        "0",
        "255",
        "256",
        "65536",
        "4294967296",
        "18446744073709551615",
        "-1",
        "",
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut n = 0;
    for text in &texts {
        maglev_vpp::fuzzing::parse_vips_text(text.as_bytes());
        let lines: Vec<&str> = text.lines().collect();
        for _ in 0..200 {
            let mut m: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            let i = rng.below(m.len());
            match rng.below(4) {
                0 => {
                    // Replace a number (or what follows a `:`) by an extreme one.
                    let l = &m[i];
                    let cut = l.rfind([':', ' ', '[', '/']).map_or(0, |c| c + 1);
                    let end = l[cut..]
                        .find(|c: char| !c.is_ascii_digit())
                        .map_or(l.len(), |e| cut + e);
                    m[i] = format!(
                        "{}{}{}",
                        &l[..cut],
                        numbers[rng.below(numbers.len())],
                        &l[end..]
                    );
                }
                1 => {
                    let l = m[i].clone();
                    m.insert(rng.below(m.len()), l);
                }
                2 => {
                    m.remove(i);
                }
                _ => {
                    // Cut a line at a byte (at a char boundary).
                    let l = &m[i];
                    let mut c = rng.below(l.len() + 1);
                    while !l.is_char_boundary(c) {
                        c -= 1;
                    }
                    m[i] = l[..c].to_owned();
                }
            }
            maglev_vpp::fuzzing::parse_vips_text(m.join("\n").as_bytes());
            n += 1;
        }
    }
    assert!(n >= 200, "{n} inputs");
}
