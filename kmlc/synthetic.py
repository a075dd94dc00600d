"""Synthetic multi-label scenes in which label co-occurrence carries information.

Each image is one of three scene types (sea, countryside, city); the scene
decides which objects may appear and where, so labels occur together by
rule: a boat only sails on the sea, a car only drives on a road, fish only
swim in the sea. Some objects are drawn small (a distant boat, a flower, a
fish) or partly hidden (a car behind a house, a sun behind a cloud), so that
seeing them is hard and knowing their usual company helps: the situation
the label graph is meant for.

`write_dataset` writes PNG images, a Corel-5k-style JSON manifest and a
vocabulary file, readable by `kmlc.data.read_manifest`.
"""

import json
import os

import numpy as np
from PIL import Image
from PIL import ImageDraw

LABELS = (
    "sky",
    "sun",
    "cloud",
    "sea",
    "boat",
    "fish",
    "grass",
    "tree",
    "flower",
    "road",
    "car",
    "house",
)

# Scene -> (probability of each optional object); sky and ground are fixed.
SCENES = {
    "sea": {"sun": 0.5, "cloud": 0.5, "boat": 0.6, "fish": 0.4},
    "countryside": {"sun": 0.5, "cloud": 0.5, "tree": 0.7, "flower": 0.5, "house": 0.3},
    "city": {"cloud": 0.4, "car": 0.7, "house": 0.8, "tree": 0.3},
}
GROUND = {"sea": "sea", "countryside": "grass", "city": "road"}

_COLOURS = {
    "sky": (110, 170, 235),
    "sun": (250, 215, 40),
    "cloud": (235, 235, 240),
    "sea": (25, 80, 170),
    "boat": (150, 75, 30),
    "fish": (245, 120, 20),
    "grass": (60, 150, 50),
    "tree": (20, 90, 25),
    "flower": (220, 40, 150),
    "road": (90, 90, 95),
    "car": (200, 20, 25),
    "house": (180, 150, 110),
}


def _jitter(rng, colour, amount=25):
    return tuple(
        int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour
    )


def render_scene(rng, size=64):
    """One random scene.

    Returns:
        `(image, labels)`: a PIL RGB image `size x size` and the sorted list
        of label names it shows.
    """
    scene = list(SCENES)[rng.integers(len(SCENES))]
    present = {GROUND[scene]}
    # The sky is missing from a third of city images (a street canyon).
    if scene != "city" or rng.random() < 0.67:
        present.add("sky")
    for name, probability in SCENES[scene].items():
        if rng.random() < probability:
            present.add(name)

    s = size
    horizon = int(s * rng.uniform(0.35, 0.55)) if "sky" in present else 0
    image = Image.new("RGB", (s, s), _jitter(rng, _COLOURS[GROUND[scene]]))
    draw = ImageDraw.Draw(image)
    if "sky" in present:
        draw.rectangle([0, 0, s, horizon], fill=_jitter(rng, _COLOURS["sky"]))
    # Noise texture, so that colour alone is not enough.
    pixels = np.asarray(image, dtype=np.int16)
    pixels = pixels + rng.integers(-18, 19, size=pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)

    def box(cx, cy, w, h):
        return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]

    if "sun" in present:
        r = s * rng.uniform(0.06, 0.11)
        cx, cy = rng.uniform(r, s - r), rng.uniform(r, max(r + 1, horizon - r))
        draw.ellipse(box(cx, cy, 2 * r, 2 * r), fill=_jitter(rng, _COLOURS["sun"]))
    if "cloud" in present:
        for _ in range(rng.integers(1, 3)):
            w, h = s * rng.uniform(0.2, 0.35), s * rng.uniform(0.08, 0.14)
            cx, cy = rng.uniform(0, s), rng.uniform(h, max(h + 1, horizon or s * 0.3))
            draw.ellipse(box(cx, cy, w, h), fill=_jitter(rng, _COLOURS["cloud"], 10))
    if "fish" in present:  # small, under the surface
        for _ in range(rng.integers(1, 3)):
            w = s * rng.uniform(0.05, 0.09)
            cx, cy = (
                rng.uniform(w, s - w),
                rng.uniform(max(horizon + w, s * 0.6), s - w),
            )
            draw.ellipse(box(cx, cy, w, w * 0.55), fill=_jitter(rng, _COLOURS["fish"]))
    if "boat" in present:  # often far away, so small
        w = s * (
            rng.uniform(0.06, 0.12) if rng.random() < 0.6 else rng.uniform(0.2, 0.3)
        )
        cx, cy = rng.uniform(w, s - w), horizon + rng.uniform(1, s * 0.15)
        draw.polygon(
            [
                (cx - w / 2, cy),
                (cx + w / 2, cy),
                (cx + w / 3, cy + w / 3),
                (cx - w / 3, cy + w / 3),
            ],
            fill=_jitter(rng, _COLOURS["boat"]),
        )
        draw.line(
            [(cx, cy), (cx, cy - w * 0.7)],
            fill=(240, 240, 240),
            width=max(1, int(w / 8)),
        )
    if "tree" in present:
        for _ in range(rng.integers(1, 3)):
            h = s * rng.uniform(0.2, 0.35)
            cx, base = rng.uniform(0, s), rng.uniform(horizon + h * 0.3, s)
            draw.rectangle(
                box(cx, base - h * 0.2, h * 0.12, h * 0.4), fill=(90, 60, 30)
            )
            draw.ellipse(
                box(cx, base - h * 0.6, h * 0.6, h * 0.6),
                fill=_jitter(rng, _COLOURS["tree"]),
            )
    if "flower" in present:  # tiny
        for _ in range(rng.integers(1, 4)):
            w = s * rng.uniform(0.03, 0.06)
            cx, cy = rng.uniform(w, s - w), rng.uniform(max(horizon, s * 0.5), s - w)
            draw.ellipse(box(cx, cy, w, w), fill=_jitter(rng, _COLOURS["flower"]))
    house_box = None
    if "house" in present:
        w, h = s * rng.uniform(0.25, 0.4), s * rng.uniform(0.25, 0.4)
        cx, base = rng.uniform(w / 2, s - w / 2), rng.uniform(max(horizon, h) + 2, s)
        house_box = box(cx, base - h / 2, w, h)
        draw.rectangle(house_box, fill=_jitter(rng, _COLOURS["house"]))
        draw.polygon(
            [(cx - w / 2, base - h), (cx + w / 2, base - h), (cx, base - h * 1.4)],
            fill=(130, 40, 30),
        )
    if "car" in present:
        w = s * rng.uniform(0.15, 0.25)
        cx, cy = rng.uniform(0, s), rng.uniform(max(horizon, s * 0.55) + w / 4, s)
        # Half the time behind the house (drawn first, then covered).
        car = Image.new("RGB", image.size)
        draw_car = ImageDraw.Draw(car)
        draw_car.rectangle(box(cx, cy, w, w * 0.4), fill=_jitter(rng, _COLOURS["car"]))
        mask = Image.new("L", image.size)
        ImageDraw.Draw(mask).rectangle(box(cx, cy, w, w * 0.4), fill=255)
        if house_box is not None and rng.random() < 0.5:
            ImageDraw.Draw(mask).rectangle(house_box, fill=0)
        image.paste(car, (0, 0), mask)
    return image, sorted(present)


def write_dataset(out_dir, num_images, size=64, seed=0):
    """Writes `num_images` scenes as PNGs plus a manifest and a vocabulary.

    Returns:
        `(manifest_path, images_dir, vocabulary_path)`.
    """
    rng = np.random.default_rng(seed)
    images_dir = os.path.join(out_dir, "images")
    os.makedirs(images_dir, exist_ok=True)
    samples = []
    for i in range(num_images):
        image, labels = render_scene(rng, size)
        name = f"{i:05d}.png"
        image.save(os.path.join(images_dir, name))
        samples.append({"image_name": name, "image_labels": labels})
    manifest = os.path.join(out_dir, "manifest.json")
    with open(manifest, "w", encoding="utf-8") as f:
        json.dump({"samples": samples}, f)
    vocabulary = os.path.join(out_dir, "vocabulary.txt")
    with open(vocabulary, "w", encoding="utf-8") as f:
        f.write("\n".join(LABELS) + "\n")
    return manifest, images_dir, vocabulary
