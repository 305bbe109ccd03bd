//! Resampling against Pillow's BILINEAR (antialiased) resize of a crop, on a committed fixture
//! (`fixtures/make_pillow_fixture.py`): torchvision's `resized_crop` on PIL images does exactly this.

use cadet_augment::functional::{CropBox, resize_box};
use cadet_augment::image::{from_u8_hwc, to_u8_hwc};
use serde_json::Value;

#[test]
fn resized_crops_match_pillow_to_one_level() {
    let fx: Value = serde_json::from_str(include_str!("fixtures/pillow_resize.json")).unwrap();
    let (h, w) = (
        fx["height"].as_u64().unwrap() as usize,
        fx["width"].as_u64().unwrap() as usize,
    );
    let pixels: Vec<u8> = serde_json::from_value(fx["pixels"].clone()).unwrap();
    let img = from_u8_hwc(&pixels, h, w, 3).unwrap();
    for case in fx["cases"].as_array().unwrap() {
        let b: Vec<usize> = serde_json::from_value(case["box"].clone()).unwrap();
        let out: Vec<usize> = serde_json::from_value(case["out"].clone()).unwrap();
        let expected: Vec<u8> = serde_json::from_value(case["pixels"].clone()).unwrap();
        let b = CropBox {
            top: b[0],
            left: b[1],
            height: b[2],
            width: b[3],
        };
        let got = to_u8_hwc(resize_box(img.view(), b, out[0], out[1]).unwrap().view());
        let worst = got
            .iter()
            .zip(&expected)
            .map(|(a, e)| (i16::from(*a) - i16::from(*e)).abs())
            .max()
            .unwrap();
        assert!(
            worst <= 1,
            "{b:?} → {out:?}: differs from Pillow by {worst} levels"
        );
    }
}
