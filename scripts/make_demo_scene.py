#!/usr/bin/env python3
"""Generate the DiffCLIP demo scene (hyperspectral + LiDAR) from real field spectra.

The scene is a synthetic 150 m x 150 m corner of a coastal campus at Gulfport, MS
(EPSG:32616, 1 m pixels): roads with curbs and sidewalks, flat concrete and pitched
shingle roofs, live oaks over lawns, shrubs, soil paths, a beach with a boardwalk and
cloth target panels. Every pixel spectrum is a random mixture of real ASD reflectance
spectra measured on the MUUFL Gulfport campus (scripts/demo_source/), resampled to 64
bands (400-1000 nm), lit by the sun (slopes, cast shadows), blurred by the sensor's
point spread function and noised. The LiDAR layers are a normalised DSM and an
intensity image. Ground truth is the class covering >= 60 % of a pixel's footprint.

    /usr/bin/python3 scripts/make_demo_scene.py [--out diffclip_qgis/demo]

Needs numpy and GDAL's Python bindings; the output is deterministic (fixed seed). If
scikit-learn is importable, a per-pixel SVM baseline at 8 shots per class is reported.
To rebuild the spectra subset from the full MUUFL file, pass --subset-from PATH.
"""
import argparse
import json
import os

import numpy as np
from osgeo import gdal, ogr, osr

gdal.UseExceptions()
ogr.UseExceptions()
osr.UseExceptions()

HERE = os.path.dirname(os.path.abspath(__file__))
SPECTRA = os.path.join(HERE, "demo_source", "muufl_spectra_subset.npz")
DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "diffclip_qgis", "demo")

SEED = 2013
N = 150                        # scene size, pixels of 1 m
SS = 4                         # geometry supersampling (0.25 m)
X0, Y0 = 292400.0, 3359500.0   # upper-left corner, EPSG:32616: USM Gulf Park campus
EPSG = 32616
WAVELENGTHS = np.round(np.linspace(403.0, 997.0, 64), 1)
FWHM = 10.0
SUN_AZIMUTH, SUN_ELEVATION = 155.0, 40.0   # degrees, November late morning: shadows to NNW
PSF_SIGMA = 0.7                # sensor point spread function, pixels
MIN_ABUNDANCE = 0.6            # ground truth: share of the footprint the class must cover
SHOTS = 8                      # sample points per class
TEMPLATE = "a multimodal fusion patch of {}."

# main: materials mixed per pixel; extras: (materials, min, max fraction) mixed in with
# a spatially smooth fraction; scale: class brightness; lidar: LiDAR return factor.
CLASSES = [
    dict(name="live oak tree", colour="#1b7837",
         prompt="tall tree canopy of live oak, several metres above ground.",
         main=["LiveOakLeaves", "FriendshipOak"],
         extras=[(["LeavesBarkMixed"], 0.0, 0.5), (["Bark"], 0.0, 0.15)], lidar=0.45),
    dict(name="grass", colour="#a6d96a", prompt=TEMPLATE.format("grass"),
         main=["GrassByBuilding", "GrassClumpInSun", "DarkGreenByBuilding"],
         extras=[(["DriedLeaves", "DeadWees"], 0.0, 0.6), (["Dirt"], 0.0, 0.15)]),
    dict(name="shrubs", colour="#66c2a5", prompt=TEMPLATE.format("shrubs"),
         main=["LandHyacinth", "PsuedoGreenbyBldg", "DarkGreenByBuilding"],
         extras=[(["GroundLitter", "DriedLeaves"], 0.0, 0.3)], lidar=0.7),
    dict(name="asphalt road", colour="#404040", prompt=TEMPLATE.format("an asphalt road"),
         main=["Asphalt"], extras=[(["Sidewalk"], 0.0, 0.1)]),
    dict(name="shingle roof", colour="#8c2d04",
         prompt="a pitched roof of dark asphalt shingles, several metres above ground.",
         main=["Asphalt"], extras=[(["ConcreteAndMetalSquare"], 0.1, 0.5)], scale=0.75),
    dict(name="concrete roof", colour="#bdbdbd",
         prompt="a flat concrete building roof, several metres above ground.",
         main=["Building"],
         extras=[(["Pillar"], 0.0, 0.2), (["Asphalt", "ConcreteAndMetalSquare"], 0.0, 0.35)]),
    dict(name="sidewalk", colour="#9ecae1", prompt=TEMPLATE.format("a concrete sidewalk"),
         main=["Sidewalk"], extras=[(["Dirt"], 0.0, 0.1)]),
    dict(name="yellow curb", colour="#ffd92f", prompt=TEMPLATE.format("a yellow curb"),
         main=["YellowCurb"], extras=[(["Sidewalk"], 0.0, 0.3)]),
    dict(name="sand", colour="#f6e8c3", prompt=TEMPLATE.format("beach sand"),
         main=["BeachSand", "SandInSun"],
         extras=[(["DriedLeaves", "Dirt", "GroundLitter"], 0.0, 0.35)]),
    dict(name="bare soil", colour="#a6761d", prompt=TEMPLATE.format("bare soil"),
         main=["Dirt", "GroundLitter"], extras=[(["DriedLeaves", "DeadWees"], 0.0, 0.4)]),
    dict(name="wooden deck", colour="#d95f02",
         prompt="a wooden boardwalk or deck, one to two metres above the ground.",
         main=["BeachStairWood"], extras=[(["BeachSand", "DriedLeaves"], 0.0, 0.2)]),
    dict(name="cloth panel", colour="#e7298a", prompt=TEMPLATE.format("a cloth target panel"),
         main=["RedCloth", "GreenCloth", "BlueCloth", "BlackCloth"], extras=[]),
]
CLS = {c["name"]: i + 1 for i, c in enumerate(CLASSES)}
MATERIALS = sorted({m for c in CLASSES
                    for m in c["main"] + [n for names, _, _ in c["extras"] for n in names]})


def blur(a, sigma):
    """Gaussian blur over the last two axes, reflecting at the edges."""
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    for axis in (a.ndim - 2, a.ndim - 1):
        pad = [(0, 0)] * a.ndim
        pad[axis] = (r, r)
        p = np.pad(a, pad, mode="reflect")
        n = a.shape[axis]
        a = sum(w * np.take(p, np.arange(i, i + n), axis=axis) for i, w in enumerate(k))
    return a


def block_mean(a):
    """Average SS x SS blocks of a supersampled (..., N*SS, N*SS) array."""
    return a.reshape(a.shape[:-2] + (N, SS, N, SS)).mean(axis=(-3, -1))


def smooth_field(rng, shape, sigma):
    """Spatially smooth noise with uniform marginal distribution on [0, 1)."""
    f = blur(rng.normal(size=shape), sigma).ravel()
    u = np.empty(f.size)
    u[np.argsort(f)] = np.arange(f.size) / f.size
    return u.reshape(shape)


def load_library():
    """Material name -> (n, bands) reflectance resampled to Gaussian band responses."""
    data = np.load(SPECTRA)
    wl = data["wavelength_nm"].astype(float)
    keep = (wl >= 385) & (wl <= 1015)          # drop the noisy ends of the ASD range
    sigma = FWHM / (2 * np.sqrt(2 * np.log(2)))
    srf = np.exp(-0.5 * ((wl[keep][None, :] - WAVELENGTHS[:, None]) / sigma) ** 2)
    srf /= srf.sum(axis=1, keepdims=True)
    return {m: np.clip(data[m][:, keep].astype(float), 0, None) @ srf.T for m in MATERIALS}


class Scene:
    """Supersampled label, height and object maps, painted shape by shape."""

    def __init__(self, rng):
        self.rng = rng
        c = (np.arange(N * SS) + 0.5) / SS
        self.x, self.y = np.meshgrid(c, c)     # metres east / south of the corner
        self.label = np.full(self.x.shape, CLS["grass"], np.int16)
        self.height = np.zeros(self.x.shape)
        self.obj = np.zeros(self.x.shape, np.int32)
        self.objects = [dict(bright=1.0, pool=None)]    # object 0: the lawn

    def add(self, mask, name, height=0.0, zbuffer=False, bright=None, pool=None):
        """Paint one object; with zbuffer only where it is higher than what is there."""
        height = np.broadcast_to(height, mask.shape)
        if zbuffer:
            mask = mask & (height > self.height)
        self.label[mask] = CLS[name]
        self.height[mask] = height[mask]
        self.obj[mask] = len(self.objects)
        if bright is None:
            bright = self.rng.uniform(0.85, 1.15)
        self.objects.append(dict(bright=bright, pool=pool))

    def rect(self, x0, y0, x1, y1):
        """An axis-aligned rectangle, in metres east and south of the corner."""
        return (self.x >= x0) & (self.x < x1) & (self.y >= y0) & (self.y < y1)

    def capsule(self, p, q, width):
        """A straight strip of the given width from point p to point q."""
        p, q = np.asarray(p, float), np.asarray(q, float)
        d = q - p
        t = np.clip(((self.x - p[0]) * d[0] + (self.y - p[1]) * d[1]) / d.dot(d), 0, 1)
        return np.hypot(self.x - p[0] - t * d[0], self.y - p[1] - t * d[1]) <= width / 2

    def blob(self, cx, cy, radius):
        """Irregular round shape: (mask, distance from the centre relative to the edge)."""
        theta = np.arctan2(self.y - cy, self.x - cx)
        edge = np.ones_like(theta)
        for k in range(2, 6):
            edge += self.rng.uniform(0, 0.07) * np.cos(k * theta + self.rng.uniform(0, 2 * np.pi))
        rel = np.hypot(self.x - cx, self.y - cy) / (radius * edge)
        return rel < 1, rel

    def gable(self, x0, y0, x1, y1, eave, ridge, along_x):
        """A pitched roof over a rectangle, ridge along x (E-W) or y (N-S)."""
        if along_x:
            off = np.abs(self.y - (y0 + y1) / 2) / ((y1 - y0) / 2)
        else:
            off = np.abs(self.x - (x0 + x1) / 2) / ((x1 - x0) / 2)
        self.add(self.rect(x0, y0, x1, y1), "shingle roof", eave + (ridge - eave) * (1 - off),
                 zbuffer=True)


def build_geometry(rng, lib):
    """Lay out the campus: ground cover first, then raised objects with a z-buffer."""
    s = Scene(rng)
    building = lib["Building"]   # four series of 10 (550 nm: about 0.28, 1.0, 0.23, 0.48)
    # Beach south of the boulevard, with a few dune-grass tufts.
    shore = 124 + 2 * np.sin(s.x / 11) + 3 * (smooth_field(rng, s.x.shape, 24) - 0.5)
    s.add(s.y > shore, "sand")
    for cx, cy, r in [(12, 135, 2.5), (47, 141, 3), (128, 140, 2), (140, 129, 2.5)]:
        s.add(s.blob(cx, cy, r)[0], "grass")
    s.add(s.rect(88, 86, 106, 95), "sand")                           # volleyball court
    # Bare soil: worn footpaths and a patch being landscaped.
    s.add(s.capsule((0, 46), (51, 38), 2.0), "bare soil")
    s.add(s.capsule((36, 66), (51, 66), 1.8), "bare soil")
    s.add(s.blob(139, 94, 7)[0], "bare soil")
    # Roads: boulevard (10 m), north-south street (8 m), service road (6 m).
    s.add(s.rect(0, 104, 150, 114), "asphalt road")
    s.add(s.rect(52, 0, 60, 104), "asphalt road")
    s.add(s.rect(61, 36, 150, 42), "asphalt road")
    not_crossing = (s.x < 51) | (s.x >= 61)
    s.add(s.rect(0, 100, 150, 103) & not_crossing, "sidewalk")
    s.add(s.rect(0, 117, 150, 119), "sidewalk")
    s.add(s.rect(61, 0, 63, 100) & ((s.y < 35) | (s.y >= 42)), "sidewalk")
    for mask in [s.rect(0, 103, 150, 104) & not_crossing, s.rect(0, 114, 150, 115),
                 s.rect(51, 0, 52, 100), s.rect(60, 0, 61, 100) & ((s.y < 35) | (s.y >= 42)),
                 s.rect(63, 35, 150, 36)]:
        s.add(mask, "yellow curb", 0.15)
    # Cloth panels of 3 m (two of them off the pixel grid) and two sub-pixel 1 m panels.
    cloths = ["RedCloth", "GreenCloth", "BlueCloth", "BlackCloth"]
    panels = [(x, 80) for x in (2, 8, 14, 20, 26)] + [(66.5, 88.5), (44.5, 46.5)]
    panels += [(113, 68), (119, 68), (113, 74), (119, 74)]
    for i, (x, y) in enumerate(panels):
        s.add(s.rect(x, y, x + 3, y + 3), "cloth panel", 0.02, pool=lib[cloths[i % 4]])
    for i, (x, y) in enumerate([(40.25, 93.25), (124.25, 79.25)]):
        s.add(s.rect(x, y, x + 1, y + 1), "cloth panel", 0.02, pool=lib[cloths[i]])
    # Shrubs: hedges along walls and flower beds.
    texture = 0.3 * (smooth_field(rng, s.x.shape, 3) - 0.5)
    for mask, h in [(s.rect(66, 50, 69, 82), 1.3), (s.rect(10, 29, 38, 31.5), 1.0),
                    (s.rect(114, 29, 140, 31), 0.9), (s.blob(46, 93, 3)[0], 0.7),
                    (s.blob(112, 90, 3.5)[0], 0.8), (s.blob(8, 70, 2.5)[0], 1.1)]:
        s.add(mask, "shrubs", h + texture, zbuffer=True)
    # Wooden boardwalk to the beach, a beach pavilion deck, a porch and a terrace.
    for rect, h in [((88, 119, 91, 150), 1.2), ((104, 127, 118, 137), 1.6),
                    ((32, 62, 36, 70), 0.7), ((40, 12, 46, 22), 1.0)]:
        s.add(s.rect(*rect), "wooden deck", h, zbuffer=True)
    # Buildings: flat concrete roofs (three surfaces) and pitched shingle roofs.
    s.add(s.rect(70, 48, 110, 84) | s.rect(110, 48, 128, 64), "concrete roof", 10.5,
          zbuffer=True, pool=building[30:40])
    s.add(s.rect(8, 6, 40, 28), "concrete roof", 7.0, zbuffer=True, bright=0.7,
          pool=building[10:20])
    s.add(s.rect(112, 4, 142, 28), "concrete roof", 12.0, zbuffer=True, pool=building[20:30])
    for x, y in [(78, 54), (95, 70), (118, 52)]:     # rooftop plant, part of the roof class
        s.add(s.rect(x, y, x + 3, y + 2), "concrete roof", 11.7, zbuffer=True,
              pool=lib["ConcreteAndMetalSquare"])
    s.gable(72, 6, 100, 26, 5.0, 8.5, along_x=True)
    s.gable(14, 52, 32, 78, 4.0, 7.0, along_x=False)
    s.gable(128, 68, 146, 86, 3.5, 6.0, along_x=True)
    # Live oaks: broad crowns, 8-15 m, some overhanging sidewalks, roads and roofs.
    leafy = smooth_field(rng, s.x.shape, 3) - 0.5
    trees = [(8, 93, 6, 11), (30, 92, 7, 13), (76, 93, 6.5, 12), (121, 95, 6, 10),
             (6, 40, 6, 12), (21, 44, 7, 14), (38, 40, 5, 10),
             (44, 57, 5.5, 11), (42, 78, 6, 12), (66, 29, 4.5, 9), (105, 31, 4, 8),
             (140, 53, 6, 12), (146, 44, 5, 9), (20, 121, 5, 8), (130, 121, 5, 9),
             (63, 130, 4, 7)]
    for cx, cy, r, top in trees:
        mask, rel = s.blob(cx, cy, r)
        crown = top * (0.6 + 0.4 * np.sqrt(np.clip(1 - rel ** 2, 0, 1))) + 1.5 * leafy
        s.add(mask, "live oak tree", crown, zbuffer=True)
    return s


def shifted(a, dr, dc):
    """The value of a[r + dr, c + dc] at (r, c); zero where that is outside a."""
    out = np.zeros_like(a)
    h, w = a.shape
    out[max(-dr, 0):h - max(dr, 0), max(-dc, 0):w - max(dc, 0)] = \
        a[max(dr, 0):h + min(dr, 0), max(dc, 0):w + min(dc, 0)]
    return out


def illumination(s):
    """Direct-sun factor per subpixel: 0 in cast shadow, cos(incidence) / sin(elevation)."""
    az, el = np.radians(SUN_AZIMUTH), np.radians(SUN_ELEVATION)
    h = s.height
    shadow = np.zeros(h.shape, bool)
    for step in range(1, int(np.ceil(h.max() / np.tan(el) * SS)) + 1):
        dr, dc = int(round(-np.cos(az) * step)), int(round(np.sin(az) * step))
        shadow |= shifted(h, dr, dc) > h + step / SS * np.tan(el) + 0.3
    gy, gx = np.gradient(blur(h, 2.0), 1 / SS)   # gy points south
    sun = np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)])
    cos_i = (-gx * sun[0] + gy * sun[1] + sun[2]) / np.sqrt(gx ** 2 + gy ** 2 + 1)
    sloped = np.isin(s.label, [CLS["live oak tree"], CLS["shrubs"], CLS["shingle roof"]])
    slope_factor = np.where(sloped, np.clip(cos_i / np.sin(el), 0.2, 1.4), 1.0)
    return np.where(shadow, 0.0, slope_factor)


def render(s, lib, rng):
    """Hyperspectral cube (bands, N, N), nDSM, LiDAR intensity and the classes' shares
    of each pixel's footprint (K, N, N)."""
    direct = illumination(s)
    diffuse = 0.10 + 0.12 * (450 / WAVELENGTHS) ** 4       # skylight share of irradiance
    bright = np.array([o["bright"] for o in s.objects])
    radiance = np.zeros((N * N, WAVELENGTHS.size))
    intensity = np.zeros(N * N)
    abundance = np.zeros((len(CLASSES), N, N))
    for k, c in enumerate(CLASSES):
        here = s.label == k + 1
        area, lit = block_mean(here).ravel(), block_mean(here * direct).ravel()
        abundance[k] = area.reshape(N, N)
        pix = np.flatnonzero(area)
        owner = np.where(here, s.obj, -1).reshape(N, SS, N, SS).max(axis=(1, 3)).ravel()[pix]
        main = np.concatenate([lib[m] for m in c["main"]])
        spectra = np.zeros((pix.size, WAVELENGTHS.size))
        for o in np.unique(owner):
            sel = owner == o
            pool = s.objects[o]["pool"]
            if pool is None:   # each object uses its own random share of the measurements
                pool = main[rng.permutation(len(main))[:max(1, int(0.6 * len(main)))]]
            pick = rng.integers(0, len(pool), (sel.sum(), 3))
            weights = rng.dirichlet(np.ones(3), sel.sum())
            spectra[sel] = np.einsum("pk,pkb->pb", weights, pool[pick])
        for names, lo, hi in c["extras"]:
            extra = np.concatenate([lib[m] for m in names])
            field = smooth_field(rng, (N, N), 3).ravel()[pix]
            f = lo + (hi - lo) * np.clip(field + 0.2 * rng.normal(size=pix.size), 0, 1)
            mix = extra[rng.integers(0, len(extra), pix.size)]
            spectra = (1 - f[:, None]) * spectra + f[:, None] * mix
        spectra *= c.get("scale", 1.0) * bright[owner][:, None]
        spectra *= 1 + 0.05 * rng.normal(size=(pix.size, 1))
        irradiance = (1 - diffuse) * lit[pix, None] + diffuse * area[pix, None]
        radiance[pix] += spectra * irradiance
        # LiDAR intensity: the 997 nm band stands in for the 1064 nm laser.
        intensity[pix] += area[pix] * c.get("lidar", 1.0) * spectra[:, -1]
    cube = blur(radiance.T.reshape(-1, N, N), PSF_SIGMA)
    cube *= np.linspace(0.9, 1.1, N)   # view-angle (BRDF) brightness across the flight line
    # Sensor noise: signal dependent, worse at the band ends, a little correlated.
    ends = 1 + 1.5 * ((WAVELENGTHS - 700) / 300) ** 4
    sd = np.sqrt(0.002 ** 2 + (cube / 100) ** 2) * ends[:, None, None]
    noise = rng.normal(size=cube.shape)
    noise = (2 * noise + np.roll(noise, 1, 0) + np.roll(noise, -1, 0)) / np.sqrt(6)
    cube = np.clip(cube + sd * noise, 0, None)
    # LiDAR: first-return nDSM with canopy gaps and height noise; noisy intensity.
    ndsm = block_mean(s.height)
    gaps = (abundance[CLS["live oak tree"] - 1] > 0.5) & (rng.random((N, N)) < 0.08)
    ndsm[gaps] *= rng.uniform(0.1, 0.8, gaps.sum())
    ndsm += rng.normal(0, 0.15, (N, N))
    intensity = 120 * intensity.reshape(N, N) * (1 + 0.12 * rng.normal(size=(N, N)))
    intensity = np.clip(intensity + rng.normal(0, 0.8, (N, N)), 0, None)
    return cube, ndsm, intensity, abundance


def ground_truth(abundance):
    """Dominant class id where it covers >= MIN_ABUNDANCE of the footprint, else 0."""
    gt = abundance.argmax(axis=0).astype(np.uint8) + 1
    gt[abundance.max(axis=0) < MIN_ABUNDANCE] = 0
    return gt


def pick_samples(gt, abundance, rng):
    """SHOTS pixels per class, as a person would click: interior pixels, spread out."""
    purity = blur(abundance, PSF_SIGMA)     # share of the class in the pixel's spectrum
    picks = []
    for k in range(len(CLASSES)):
        a = purity[k]
        ok = (gt == k + 1) & (a >= 0.95 * a[gt == k + 1].max())
        ok[:2], ok[-2:], ok[:, :2], ok[:, -2:] = False, False, False, False
        if ok.sum() < SHOTS:
            raise RuntimeError(f"{CLASSES[k]['name']}: too few interior pixels to sample")
        cand = np.argwhere(ok)[rng.permutation(int(ok.sum()))]
        spacing, chosen = 30.0, []
        while len(chosen) < SHOTS:
            chosen = []
            for rc in cand:
                if all(np.hypot(*(rc - q)) >= spacing for q in chosen):
                    chosen.append(rc)
                    if len(chosen) == SHOTS:
                        break
            spacing *= 0.8
        picks += [(k + 1, int(r), int(c)) for r, c in chosen]
    return picks


def srs():
    ref = osr.SpatialReference()
    ref.ImportFromEPSG(EPSG)
    return ref


def create_tif(path, bands, dtype, options=()):
    ds = gdal.GetDriverByName("GTiff").Create(path, N, N, bands, dtype,
                                              ["COMPRESS=DEFLATE", "TILED=YES", *options])
    ds.SetGeoTransform((X0, 1.0, 0.0, Y0, 0.0, -1.0))
    ds.SetSpatialRef(srs())
    return ds


def write_outputs(out, cube, ndsm, intensity, gt, picks):
    os.makedirs(out, exist_ok=True)
    for name in ["demo_hsi.tif", "demo_lidar.tif", "demo_gt.tif", "demo_samples.gpkg"]:
        for path in (os.path.join(out, name), os.path.join(out, name + ".aux.xml")):
            if os.path.exists(path):
                os.remove(path)
    # Reflectance rounded to multiples of 2**-14 (far below the noise) compresses well.
    cube = np.round(cube * 2 ** 14) / 2 ** 14
    ds = create_tif(os.path.join(out, "demo_hsi.tif"), len(WAVELENGTHS), gdal.GDT_Float32,
                    ["PREDICTOR=3", "INTERLEAVE=BAND"])
    ds.SetMetadataItem("DESCRIPTION", "Synthetic DiffCLIP demo scene, surface reflectance "
                       "(0-1) from MUUFL Gulfport ASD field spectra")
    ds.SetMetadata({"wavelength": "{" + ", ".join(f"{w:.1f}" for w in WAVELENGTHS) + "}",
                    "fwhm": "{" + ", ".join(f"{FWHM:.1f}" for _ in WAVELENGTHS) + "}",
                    "wavelength_units": "Nanometers"}, "ENVI")
    for i, w in enumerate(WAVELENGTHS):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(cube[i].astype(np.float32))
        band.SetDescription(f"band {i + 1} ({w:.1f} nm)")
        band.SetMetadata({"wavelength": f"{w:.1f}", "wavelength_units": "Nanometers",
                          "fwhm": f"{FWHM:.1f}"})
        band.SetMetadata({"CENTRAL_WAVELENGTH_UM": f"{w / 1000:.4f}",
                          "FWHM_UM": f"{FWHM / 1000:.4f}"}, "IMAGERY")
    ds = None
    ds = create_tif(os.path.join(out, "demo_lidar.tif"), 2, gdal.GDT_Float32, ["PREDICTOR=3"])
    for i, (arr, desc) in enumerate([(ndsm, "surface height above ground (m)"),
                                     (intensity, "intensity")]):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray((np.round(arr * 2 ** 10) / 2 ** 10).astype(np.float32))
        band.SetDescription(desc)
    ds.GetRasterBand(1).SetUnitType("m")
    ds = None
    ds = create_tif(os.path.join(out, "demo_gt.tif"), 1, gdal.GDT_Byte)
    band = ds.GetRasterBand(1)
    band.WriteArray(gt)
    band.SetDescription("class id (0 = unlabelled)")
    table = gdal.ColorTable()
    table.SetColorEntry(0, (0, 0, 0, 0))
    for i, c in enumerate(CLASSES):
        h = c["colour"].lstrip("#")
        table.SetColorEntry(i + 1, (int(h[:2], 16), int(h[2:4], 16), int(h[4:], 16), 255))
    band.SetRasterColorTable(table)
    band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
    band.SetCategoryNames(["unlabelled"] + [c["name"] for c in CLASSES])
    ds = None
    with open(os.path.join(out, "demo_classes.json"), "w", encoding="utf-8") as f:
        json.dump({"format": "diffclip-classes", "version": 1,
                   "classes": [dict(id=i + 1, name=c["name"], colour=c["colour"],
                                    prompt=c["prompt"]) for i, c in enumerate(CLASSES)]},
                  f, indent=2)
        f.write("\n")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(os.path.join(out, "demo_samples.gpkg"))
    layer = ds.CreateLayer("samples", srs(), ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    name_field = ogr.FieldDefn("class_name", ogr.OFTString)
    layer.CreateField(name_field)
    for cid, r, c in picks:
        feat = ogr.Feature(layer.GetLayerDefn())
        feat.SetField("class_id", cid)
        feat.SetField("class_name", CLASSES[cid - 1]["name"])
        point = ogr.Geometry(ogr.wkbPoint)
        point.AddPoint_2D(X0 + c + 0.5, Y0 - r - 0.5)
        feat.SetGeometry(point)
        layer.CreateFeature(feat)
    ds = None


def report(cube, ndsm, intensity, gt, picks):
    """Print class pixel counts and, if scikit-learn is available, a per-pixel SVM OA."""
    print(f"{'id':>3} {'class':<15} {'pixels':>7}")
    for i, c in enumerate(CLASSES):
        print(f"{i + 1:>3} {c['name']:<15} {int((gt == i + 1).sum()):>7}")
    print(f"    {'unlabelled':<15} {int((gt == 0).sum()):>7}")
    try:
        from sklearn.svm import SVC
    except ImportError:
        print("scikit-learn not available: SVM baseline skipped")
        return
    x = np.concatenate([cube, ndsm[None], intensity[None]]).reshape(cube.shape[0] + 2, -1).T
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    train = np.array([r * N + c for _, r, c in picks])
    test = np.setdiff1d(np.flatnonzero(gt.ravel()), train)
    svm = SVC(C=10, gamma="scale").fit(x[train], gt.ravel()[train])
    oa = (svm.predict(x[test]) == gt.ravel()[test]).mean()
    print(f"per-pixel SVM-RBF (HSI+LiDAR, {SHOTS} shots/class): OA {100 * oa:.1f}% "
          f"on {test.size} pixels")


def write_subset(source):
    """Copy the wavelengths and the spectra of the materials used from the full file."""
    data = np.load(source)
    os.makedirs(os.path.dirname(SPECTRA), exist_ok=True)
    np.savez_compressed(SPECTRA, wavelength_nm=data["wavelength_nm"],
                        **{m: data[m] for m in MATERIALS})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--subset-from", metavar="NPZ",
                        help="first rebuild the spectra subset from the full MUUFL file")
    args = parser.parse_args()
    if args.subset_from:
        write_subset(args.subset_from)
    rng = np.random.default_rng(SEED)
    lib = load_library()
    scene = build_geometry(rng, lib)
    cube, ndsm, intensity, abundance = render(scene, lib, rng)
    gt = ground_truth(abundance)
    picks = pick_samples(gt, abundance, rng)
    write_outputs(args.out, cube, ndsm, intensity, gt, picks)
    report(cube, ndsm, intensity, gt, picks)


if __name__ == "__main__":
    main()
