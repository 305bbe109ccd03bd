//! What an image decoder may allocate is bounded by the image's own size, not by the data set's limits: a
//! 32 × 32 PNG whose `iCCP` chunk (the colour profile) is a zlib bomb — 256 KiB on disk, 256 MiB inflated —
//! loads with a few MiB. Before, the decoder was allowed 2 GiB per image and inflated the whole profile (the
//! hostile pass measured 1 GB of RSS for nine such images, 2 GB for a 5 GiB bomb).
//!
//! The allocator aborts on any single allocation over 64 MiB, so the old behaviour fails this test.

use std::io::Write;

use cadet_core::fuzz::CappedAllocator;
use cadet_data::formats::ImageFolder;

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator::new(64 << 20);

/// A `w × h` RGB PNG whose `iCCP` chunk inflates to `inflated` bytes of zeros (compressed as a stream, so
/// writing it allocates little).
fn png_with_iccp_bomb(w: u32, h: u32, inflated: usize) -> Vec<u8> {
    let mut iccp = b"bomb\0\0".to_vec(); // profile name, NUL, compression method 0 (zlib)
    let mut z = flate2::write::ZlibEncoder::new(&mut iccp, flate2::Compression::best());
    let zeros = vec![0u8; 1 << 16];
    for _ in 0..inflated / zeros.len() {
        z.write_all(&zeros).unwrap();
    }
    z.finish().unwrap();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header().unwrap();
    writer.write_chunk(png::chunk::iCCP, &iccp).unwrap();
    let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    out
}

#[test]
fn an_iccp_zlib_bomb_is_not_inflated() {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("a");
    std::fs::create_dir(&class).unwrap();
    let bomb = png_with_iccp_bomb(32, 32, 256 << 20);
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    for i in 0..3 {
        std::fs::write(class.join(format!("{i}.png")), &bomb).unwrap();
    }
    // The pixels decode (the profile, which nothing here uses, is dropped by the decoder when over the bound).
    let data = ImageFolder::new(dir.path()).load().unwrap();
    assert_eq!(data.images().dim(), (3, 3, 32, 32));
    // Pixel (0, 1)'s red value is byte 3 of the row.
    assert_eq!(data.images()[[0, 0, 0, 1]], 21);
}

/// A valid image with a 12 MiB text chunk is refused with what the decoder was allowed and why (the image
/// crate's own message named nothing: "Memory limit exceeded").
#[test]
fn a_huge_text_chunk_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("a");
    std::fs::create_dir(&class).unwrap();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 8, 8);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header().unwrap();
    let mut text = b"Comment\0".to_vec();
    text.resize(12 << 20, b'x');
    writer.write_chunk(png::chunk::tEXt, &text).unwrap();
    writer.write_image_data(&[7u8; 8 * 8 * 3]).unwrap();
    writer.finish().unwrap();
    std::fs::write(class.join("0.png"), &out).unwrap();
    let err = ImageFolder::new(dir.path()).load().unwrap_err().to_string();
    assert!(
        err.contains("0.png") && err.contains("MiB allowed") && err.contains("text chunk"),
        "{err}"
    );
}
