
import numpy as np
import pytest
from conftest import write_photo
from PIL import Image

from captioner.data.images import load_image, resize
from captioner.errors import ImageError


@pytest.mark.parametrize(
    "name,fmt,mode",
    [
        ("a.jpg", "JPEG", "RGB"),
        ("b.png", "PNG", "RGB"),
        ("c.bmp", "BMP", "RGB"),
        ("d.webp", "WEBP", "RGB"),
        ("e.tiff", "TIFF", "RGB"),
        ("f.png", "PNG", "L"),
        ("g.png", "PNG", "P"),
        ("h.jpg", "JPEG", "CMYK"),
        ("i.gif", "GIF", "P"),
    ],
)
def test_every_kind_loads_as_rgb_uint8(tmp_path, name, fmt, mode):
    path = write_photo(tmp_path / name, fmt=fmt, mode=mode)
    image = load_image(path)
    assert image.dtype == np.uint8 and image.shape == (48, 64, 3)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent except the first pixel
    rgba[0, 0, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    image = load_image(tmp_path / "t.png")
    assert tuple(image[0, 0]) == (255, 0, 0)
    assert tuple(image[1, 1]) == (255, 255, 255)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    grey = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4000).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")  # uint16 -> a 16-bit PNG
    image = load_image(tmp_path / "g16.png")
    assert image.shape == (4, 4, 3)
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    assert image[..., 0].max() > 200 and image[0, 0, 0] == 0
    assert len(np.unique(image[..., 0])) == 16


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # left half white
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    img.save(tmp_path / "rot.jpg", exif=exif)
    image = load_image(tmp_path / "rot.jpg")
    assert image.shape == (40, 20, 3)
    assert image[:20].mean() > 200 and image[20:].mean() < 50  # white half now on top


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    image = load_image(tmp_path / "anim.gif")
    assert image[..., 0].mean() > 200 and image[..., 2].mean() < 50


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"", "empty"),
        (b"hello, I am text\n", "not an image"),
    ],
)
def test_bad_files_raise_image_error_naming_file(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=reason) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_jpeg(tmp_path):
    good = write_photo(tmp_path / "ok.jpg", size=(200, 150)).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(good[: len(good) // 3])
    with pytest.raises(ImageError, match="cut.jpg"):
        load_image(path)


def test_missing_file_and_pixel_limit(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.png")
    path = write_photo(tmp_path / "big.png", size=(100, 100))
    with pytest.raises(ImageError, match="exceeds the limit"):
        load_image(path, max_pixels=5000)
    assert load_image(path, max_pixels=10_000).shape == (100, 100, 3)


def test_resize_gives_square_input():
    image = np.zeros((30, 50, 3), np.uint8)
    assert resize(image, 224).shape == (224, 224, 3)
    assert resize(image, 224).dtype == np.uint8


def test_any_decoder_exception_is_an_image_error_naming_the_file(tmp_path, monkeypatch):
    from PIL import ImageFile

    path = write_photo(tmp_path / "odd.png")

    def explode(self):
        raise RuntimeError("decoder bug")  # what a plugin may raise on a crafted file

    monkeypatch.setattr(ImageFile.ImageFile, "load", explode)
    with pytest.raises(ImageError, match=r"odd\.png: cannot decode image \(RuntimeError: decoder bug\)"):
        load_image(path)


def test_a_huge_image_is_decoded_downscaled_in_bounded_memory(tmp_path):
    """An 81-megapixel RGBA PNG (under the 90 MP guard, a few hundred KB on disk) used to cost
    gigabytes; decoded for a 224 input it must stay near one decode of the file."""
    import subprocess
    import sys

    from PIL import Image

    path = tmp_path / "huge.png"
    Image.new("RGBA", (9000, 9000), (200, 120, 40, 255)).save(path, compress_level=1)
    # VmHWM, the peak of this process's own memory (ru_maxrss would also count the pytest
    # process it was forked from).
    code = (
        "import sys\n"
        "from captioner.data.images import load_image\n"
        "image = load_image(sys.argv[1], size=224)\n"
        "peak = next(line for line in open('/proc/self/status') if line.startswith('VmHWM'))\n"
        "print(image.shape, int(peak.split()[1]) // 1024)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          timeout=300, check=True)
    shape, peak_mb = proc.stdout.rsplit(" ", 1)
    height, width = eval(shape)[:2]
    assert min(height, width) >= 224 and max(height, width) < 9000 // 2
    # One RGBA decode is 324 MB, and Pillow's reduce makes one premultiplied copy of it; the
    # old path held six full-size copies at once (2 GB).
    assert int(peak_mb) < 900, f"peak memory {peak_mb} MB"
    assert load_image(path, size=224)[0, 0].tolist() == [200, 120, 40]


@pytest.mark.parametrize("mode", ["I;16", "P", "1", "L", "RGBA", "CMYK"])
def test_large_images_of_every_mode_decode_downscaled(tmp_path, mode):
    """16-bit, palette and 1-bit images are reduced too (Pillow's reduce refuses them as is)."""
    path = write_photo(tmp_path / f"big.{'jpg' if mode == 'CMYK' else 'png'}", size=(600, 500),
                       mode=mode)
    image = load_image(path, size=224)
    assert image.dtype == np.uint8 and image.shape[2] == 3
    assert 224 <= min(image.shape[:2]) < 500
