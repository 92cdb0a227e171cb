#!/usr/bin/python3
"""Generates the photo-like digit test set in tests/photos/ (see README.md there).

Each image is a 128x96 8-bit grayscale PNG of one digit as a phone camera might see it: a
typeface digit or a synthetic handwritten one (a jittered stroke skeleton drawn with a round
pen), thin to very bold, rotated, off-centre, under uneven lighting, blurred, with sensor noise,
sometimes light ink on a dark board. Everything is drawn from one seeded generator, so the same
seed, Debian 12's python3-pil/python3-numpy and the same font packages give the same bytes.

    /usr/bin/python3 tests/photos/generate.py --seed 16 --count 220 --out tests/photos/set
    /usr/bin/python3 tests/photos/generate.py --seed 1016 --count 220 --out /tmp/held-out   # held out
"""

import argparse
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

W, H = 128, 96
SS = 4  # supersampling of the ink mask (anti-aliased edges)

FONT_DIRS = ["/usr/share/fonts/truetype", "/usr/share/fonts/opentype"]
# Typefaces whose digits a person would write alike; not ones with slashed/dotted zeros
# (DejaVu/Liberation Mono), symbols, dingbats or math.
FONTS = [
    "dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf", "dejavu/DejaVuSans-ExtraLight.ttf",
    "dejavu/DejaVuSans-Oblique.ttf", "dejavu/DejaVuSansCondensed-Bold.ttf", "dejavu/DejaVuSerif.ttf",
    "dejavu/DejaVuSerif-Bold.ttf",
    "liberation/LiberationSans-Regular.ttf", "liberation/LiberationSans-Bold.ttf",
    "liberation/LiberationSans-Italic.ttf", "liberation/LiberationSerif-Regular.ttf",
    "liberation/LiberationSerif-Bold.ttf",
    "freefont/FreeSans.ttf", "freefont/FreeSansBold.ttf", "freefont/FreeSerif.ttf",
    "freefont/FreeSerifItalic.ttf",
    "urw-base35/NimbusSans-Regular.otf", "urw-base35/NimbusSans-Bold.otf",
    "urw-base35/NimbusSansNarrow-Regular.otf", "urw-base35/NimbusRoman-Regular.otf",
    "urw-base35/URWGothic-Book.otf", "urw-base35/URWGothic-Demi.otf", "urw-base35/URWBookman-Light.otf",
    "urw-base35/C059-Roman.otf", "urw-base35/P052-Roman.otf",
    "comic-neue/ComicNeue-Regular.otf", "comic-neue/ComicNeue-Bold.otf", "comic-neue/ComicNeue-Light.otf",
    "comic-neue/ComicNeue-Italic.otf",
]

# Stroke skeletons of handwritten digits in a unit box (x right, y down), one or more strokes
# each; several variants per digit as people write them.
SKELETONS = {
    0: [[[(0.5, 0.0), (0.15, 0.2), (0.1, 0.55), (0.3, 0.95), (0.6, 1.0), (0.88, 0.7), (0.85, 0.25), (0.55, 0.0), (0.45, 0.04)]]],
    1: [[[(0.5, 0.0), (0.48, 1.0)]], [[(0.25, 0.2), (0.55, 0.0), (0.5, 1.0)]]],
    2: [[[(0.12, 0.22), (0.35, 0.02), (0.7, 0.03), (0.85, 0.28), (0.6, 0.58), (0.1, 1.0), (0.92, 0.98)]],
        [[(0.15, 0.2), (0.5, 0.0), (0.85, 0.22), (0.7, 0.5), (0.12, 0.98), (0.5, 0.88), (0.95, 0.95)]]],
    3: [[[(0.12, 0.12), (0.5, 0.0), (0.85, 0.2), (0.45, 0.46), (0.9, 0.7), (0.55, 1.0), (0.1, 0.88)]],
        [[(0.15, 0.05), (0.85, 0.05), (0.45, 0.42), (0.9, 0.68), (0.5, 1.0), (0.12, 0.85)]]],
    4: [[[(0.55, 0.0), (0.08, 0.65), (0.95, 0.65)], [(0.72, 0.28), (0.7, 1.0)]],
        [[(0.2, 0.0), (0.12, 0.55), (0.9, 0.55)], [(0.75, 0.0), (0.72, 1.0)]]],
    5: [[[(0.85, 0.02), (0.25, 0.0)], [(0.25, 0.0), (0.18, 0.45), (0.6, 0.38), (0.9, 0.65), (0.65, 0.97), (0.12, 0.9)]],
        [[(0.85, 0.0), (0.22, 0.02), (0.18, 0.46), (0.55, 0.4), (0.88, 0.62), (0.7, 0.95), (0.15, 0.92)]]],
    6: [[[(0.75, 0.0), (0.35, 0.28), (0.12, 0.68), (0.35, 1.0), (0.75, 0.92), (0.82, 0.62), (0.45, 0.5), (0.15, 0.7)]]],
    7: [[[(0.08, 0.02), (0.92, 0.0), (0.4, 1.0)]], [[(0.1, 0.02), (0.9, 0.02), (0.45, 1.0)], [(0.3, 0.5), (0.78, 0.48)]]],
    8: [[[(0.52, 0.47), (0.15, 0.24), (0.5, 0.0), (0.85, 0.22), (0.5, 0.47), (0.12, 0.76), (0.5, 1.0), (0.88, 0.75), (0.52, 0.47)]]],
    9: [[[(0.85, 0.25), (0.5, 0.48), (0.15, 0.28), (0.5, 0.0), (0.85, 0.2), (0.82, 0.6), (0.65, 1.0)]],
        [[(0.85, 0.3), (0.5, 0.45), (0.15, 0.25), (0.5, 0.0), (0.85, 0.15), (0.85, 1.0)]]],
}


def catmull_rom(points, steps=12):
    """A smooth curve through `points` (an open Catmull-Rom spline)."""
    p = [points[0]] + list(points) + [points[-1]]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = (np.array(q) for q in p[i - 1:i + 3])
        for t in np.linspace(0, 1, steps, endpoint=False):
            t2, t3 = t * t, t * t * t
            out.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t3))
    out.append(np.array(points[-1]))
    return out


def handwritten_mask(rng, digit, height, width_px):
    """Ink mask (mode L, supersampled) of a jittered skeleton drawn with a round pen."""
    strokes = SKELETONS[digit][rng.integers(len(SKELETONS[digit]))]
    aspect = rng.uniform(0.5, 0.8)  # width / height of the digit box
    shear = rng.uniform(-0.25, 0.25)
    h, w = height * SS, height * aspect * SS
    pad = int(width_px * SS) + 4
    size = (int(w + 2 * pad + abs(shear) * h), int(h + 2 * pad))
    img = Image.new("L", size, 0)
    draw = ImageDraw.Draw(img)
    for stroke in strokes:
        jittered = [(x + rng.normal(0, 0.035), y + rng.normal(0, 0.025)) for x, y in stroke]
        curve = catmull_rom(jittered)
        pen = width_px * SS * rng.uniform(0.85, 1.15)
        pts = [(pad + abs(shear) * h + (x - shear * (y - 0.5) * 0 - 0.0) * w - shear * y * h, pad + y * h) for x, y in curve]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            pen = min(max(pen * rng.uniform(0.97, 1.03), width_px * SS * 0.7), width_px * SS * 1.3)
            draw.line([(x0, y0), (x1, y1)], fill=255, width=max(1, int(round(pen))))
            r = pen / 2
            draw.ellipse([x1 - r, y1 - r, x1 + r, y1 + r], fill=255)
        x0, y0 = pts[0]
        draw.ellipse([x0 - pen / 2, y0 - pen / 2, x0 + pen / 2, y0 + pen / 2], fill=255)
    return img


def font_mask(rng, digit, height, weight):
    """Ink mask (mode L, supersampled) of `digit` in a random typeface, thickened or thinned."""
    path = next(os.path.join(d, f) for f in [FONTS[rng.integers(len(FONTS))]] for d in FONT_DIRS
                if os.path.exists(os.path.join(d, f)))
    font = ImageFont.truetype(path, int(height * SS * 1.35))
    left, top, right, bottom = font.getbbox(str(digit))
    pad = int(height * SS * 0.3)
    img = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    stroke = max(0, int(round(weight * SS)))
    ImageDraw.Draw(img).text((pad - left, pad - top), str(digit), font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    if weight < 0:  # thin the typeface's strokes
        img = img.filter(ImageFilter.MinFilter(2 * int(round(-weight * SS)) + 1))
    scale = height * SS / max(1, (bottom - top + 2 * stroke))
    return img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))), Image.LANCZOS), os.path.basename(path)


def illumination(rng):
    """Light falling on the page, relative (1 = the brightest): a tilted plane, a soft shadow
    edge and a vignette."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    ang = rng.uniform(0, 2 * math.pi)
    light = 1 - rng.uniform(0, 0.4) * (0.5 + (xx / W - 0.5) * math.cos(ang) + (yy / H - 0.5) * math.sin(ang))
    if rng.random() < 0.5:  # a shadow edge (hand or phone) across part of the page
        cx, cy, r = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(0.3, 0.9) * W
        d = np.hypot(xx - cx, yy - cy)
        light = light * (1 - rng.uniform(0.15, 0.4) / (1 + np.exp((d - r) / (rng.uniform(0.04, 0.12) * W))))
    d = np.hypot((xx - W / 2) / W, (yy - H / 2) / H)
    return light * (1 - rng.uniform(0, 0.35) * d * d * 2)


def render(rng, digit):
    dark_board = rng.random() < 0.2
    kind = "hand" if rng.random() < 0.5 else "font"
    height = rng.uniform(0.38, 0.8) * H
    weight_class = rng.choice(["thin", "normal", "bold", "very-bold"], p=[0.2, 0.35, 0.25, 0.2])
    if kind == "hand":
        pen = {"thin": (0.03, 0.055), "normal": (0.06, 0.1), "bold": (0.1, 0.15), "very-bold": (0.15, 0.2)}[weight_class]
        mask = handwritten_mask(rng, digit, height, rng.uniform(*pen) * height)
        style = f"hand-{weight_class}"
    else:
        extra = {"thin": (-0.02, 0.0), "normal": (0.0, 0.02), "bold": (0.03, 0.06), "very-bold": (0.06, 0.09)}[weight_class]
        mask, font = font_mask(rng, digit, height, rng.uniform(*extra) * height)
        style = f"{os.path.splitext(font)[0]}-{weight_class}"
    mask = mask.rotate(rng.uniform(-12, 12), resample=Image.BICUBIC, expand=True)
    # Down to frame pixels, and smaller still if the rotated digit would not fit the frame.
    fit = min(1.0, (W - 8) * SS / mask.width, (H - 8) * SS / mask.height)
    mask = mask.resize((max(1, int(mask.width * fit) // SS), max(1, int(mask.height * fit) // SS)), Image.BOX)
    # Off-centre: anywhere the digit fits with a small border.
    x = int(rng.uniform(4, max(5, W - mask.width - 4)))
    y = int(rng.uniform(4, max(5, H - mask.height - 4)))
    ink = np.zeros((H, W))
    m = np.asarray(mask, dtype=np.float64)[: H - y, : W - x] / 255.0
    ink[y:y + m.shape[0], x:x + m.shape[1]] = m
    # What the camera records is light times reflectance, for the page and the ink alike.
    light = illumination(rng) * rng.uniform(170, 250)
    if dark_board:
        page, ink_refl = rng.uniform(0.1, 0.28), rng.uniform(0.7, 0.97)
    else:
        page, ink_refl = rng.uniform(0.75, 0.97), rng.uniform(0.05, 0.4)
    ink_refl = ink_refl * (1 + rng.uniform(-0.15, 0.15) * (np.arange(W)[None, :] / W - 0.5))  # pen pressure
    img = light * (page * (1 - ink) + ink_refl * ink)
    blur = rng.uniform(0, 1.4) if rng.random() < 0.7 else 0.0
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if blur > 0.05:
        pil = pil.filter(ImageFilter.GaussianBlur(blur))
    noise = rng.normal(0, rng.uniform(1.0, 5.0), (H, W))
    img = np.clip(np.asarray(pil, dtype=np.float64) + noise, 0, 255).round().astype(np.uint8)
    return Image.fromarray(img), style + ("-dark" if dark_board else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, default=220)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    for i in range(args.count):
        digit = i % 10
        img, style = render(rng, digit)
        img.save(os.path.join(args.out, f"{i:04d}-{digit}-{style}.png"), optimize=True)


if __name__ == "__main__":
    main()
