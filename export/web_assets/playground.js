// The gan-accel playground: the exported generator (model.onnx) run in the browser by
// onnxruntime-web, with its metadata from model.json (onnxruntime-web does not expose ONNX
// metadata). Everything is loaded from this folder: no network beyond the page's own server.
import * as ort from "./ort.wasm.bundle.min.mjs";

const $ = (id) => document.getElementById(id);
const DISPLAY_PX = 224; // the canvas side the image is scaled up to (nearest neighbour)

// the .wasm sits beside this module (the bundle carries its own JavaScript glue, so only the
// binary is named); without cross-origin isolation the wasm backend runs one thread either
// way, so ask for one
ort.env.wasm.wasmPaths = { wasm: new URL("./ort-wasm-simd-threaded.wasm", import.meta.url).href };
ort.env.wasm.numThreads = 1;

// ---------------------------------------------------------------------------- random draws
// The page's own seeded draws (numpy's streams cannot be reproduced here): mulberry32 +
// Box-Muller for N(0, 1), uniform for U(-1, 1), as the metadata's z distribution says.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function drawZ(seed, latent) {
  const rand = mulberry32(seed);
  const z = new Float32Array(latent.z_dim);
  for (let i = 0; i < z.length; i++) {
    if (latent.z_dist === "uniform") {
      z[i] = rand() * 2 - 1;
    } else {
      const u = 1 - rand(), v = rand();
      z[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }
  }
  return z;
}

// ---------------------------------------------------------------------------- pixels
// [0, 1] (or [-1, 1]) floats -> uint8 exactly as the toolkit quantises every image it writes:
// floor(x * scale + (0.5 - lo * scale)) clipped to [0, 255], in float32 steps.
function quantiser(outputRange) {
  const lo = outputRange === "symmetric" ? -1 : 0;
  const scale = Math.fround(255 / (1 - lo));
  const offset = Math.fround(0.5 - lo * scale);
  return (x) => {
    const v = Math.fround(Math.fround(x * scale) + offset);
    return Math.floor(Math.min(Math.max(v, 0), 255));
  };
}

function toImageData(data, dims, index, quantise) {
  const [, channels, height, width] = dims;
  const plane = height * width;
  const base = index * channels * plane;
  const out = new ImageData(width, height);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const src = base + (channels === 1 ? 0 : c) * plane + p;
      out.data[4 * p + c] = quantise(data[src]);
    }
    out.data[4 * p + 3] = 255;
  }
  return out;
}

// ---------------------------------------------------------------------------- the app
class Playground {
  constructor(meta, session) {
    this.meta = meta;
    this.session = session;
    this.latent = meta.latent;
    this.quantise = quantiser(meta.output_range);
    const { height, width } = meta.image;
    this.scale = Math.max(1, Math.floor(DISPLAY_PX / Math.max(height, width)));
    this.canvas = $("image");
    this.canvas.width = width * this.scale;
    this.canvas.height = height * this.scale;
    this.native = document.createElement("canvas");
    this.native.width = width;
    this.native.height = height;
    this.state = { z: drawZ(0, this.latent), label: 0, cat: 0,
                   cont: new Float32Array(this.latent.cont_dim) };
    this.ends = { a: null, b: null };
    this.busy = Promise.resolve();
  }

  // feeds for rows of {z, label, codes}: what model.onnx takes (names from the metadata)
  feeds(rows) {
    const n = rows.length, L = this.latent, feeds = {};
    const z = new Float32Array(n * L.z_dim);
    rows.forEach((r, i) => z.set(r.z, i * L.z_dim));
    feeds.z = new ort.Tensor("float32", z, [n, L.z_dim]);
    if (L.num_classes) {
      feeds.label = new ort.Tensor("int64", BigInt64Array.from(rows, (r) => BigInt(r.label)), [n]);
    }
    const width = L.cat_dim + L.cont_dim;
    if (width) {
      const codes = new Float32Array(n * width);
      rows.forEach((r, i) => codes.set(r.codes, i * width));
      feeds.codes = new ort.Tensor("float32", codes, [n, width]);
    }
    return feeds;
  }

  codesOf(state) {
    const L = this.latent, codes = new Float32Array(L.cat_dim + L.cont_dim);
    if (L.cat_dim) codes[state.cat] = 1;
    codes.set(state.cont, L.cat_dim);
    return codes;
  }

  row(state) {
    return { z: state.z, label: state.label, codes: this.codesOf(state) };
  }

  async generate(rows) {
    const t0 = performance.now();
    const out = await this.session.run(this.feeds(rows));
    const image = out.image;
    this.lastMs = performance.now() - t0;
    return { data: image.data, dims: image.dims };
  }

  draw(result, index = 0) {
    const img = toImageData(result.data, result.dims, index, this.quantise);
    this.native.getContext("2d").putImageData(img, 0, 0);
    const ctx = this.canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.native, 0, 0, this.canvas.width, this.canvas.height);
    $("timing").textContent = `generated in ${this.lastMs.toFixed(1)} ms (onnxruntime-web, wasm)`;
    return img;
  }

  // one generation at a time: slider events queue behind the running one
  render() {
    this.busy = this.busy.then(async () => this.draw(await this.generate([this.row(this.state)])));
    return this.busy;
  }

  // ------------------------------------------------------------------------ controls
  buildControls() {
    const L = this.latent, range = L.z_dist === "uniform" ? 1 : 3;
    this.zInputs = this.sliders($("z-sliders"), L.z_dim, "z", -range, range, (i, v) => {
      this.state.z[i] = v;
      this.render();
    });
    if (L.num_classes) {
      $("class-box").hidden = false;
      this.options($("class"), L.num_classes);
      $("class").onchange = (e) => { this.state.label = Number(e.target.value); this.render(); };
    }
    if (L.cat_dim + L.cont_dim) {
      $("codes-box").hidden = false;
      this.options($("category"), L.cat_dim);
      $("category").onchange = (e) => { this.state.cat = Number(e.target.value); this.render(); };
      this.contInputs = this.sliders($("code-sliders"), L.cont_dim, "c", -1, 1, (i, v) => {
        this.state.cont[i] = v;
        this.render();
      });
    }
    $("new-seed").onclick = () => {
      const seed = (Number($("seed").value) + 1) >>> 0;
      $("seed").value = seed;
      this.setZ(drawZ(seed, L));
    };
    $("seed").onchange = () => this.setZ(drawZ(Number($("seed").value) >>> 0, L));
    $("set-a").onclick = () => { this.ends.a = this.snapshot(); this.showEnds(); };
    $("set-b").onclick = () => { this.ends.b = this.snapshot(); this.showEnds(); };
    $("play").onclick = () => this.play(Number($("frames").value) || 48);
    for (const id of ["new-seed", "set-a", "set-b", "play"]) $(id).disabled = false;
  }

  sliders(parent, count, name, lo, hi, onInput) {
    const inputs = [];
    for (let i = 0; i < count; i++) {
      const wrap = document.createElement("label");
      wrap.className = "slider";
      const input = Object.assign(document.createElement("input"),
        { type: "range", min: lo, max: hi, step: (hi - lo) / 200, value: 0 });
      const value = document.createElement("span");
      input.oninput = () => { value.textContent = Number(input.value).toFixed(2);
                              onInput(i, Number(input.value)); };
      wrap.append(`${name}${i}`, input, value);
      parent.append(wrap);
      inputs.push({ input, value });
    }
    return inputs;
  }

  options(select, count) {
    select.replaceChildren(...Array.from({ length: count }, (_, k) =>
      Object.assign(document.createElement("option"), { value: k, textContent: String(k) })));
  }

  syncControls() {
    const s = this.state;
    (this.zInputs || []).forEach(({ input, value }, i) => {
      input.value = s.z[i];
      value.textContent = s.z[i].toFixed(2);
    });
    (this.contInputs || []).forEach(({ input, value }, i) => {
      input.value = s.cont[i];
      value.textContent = s.cont[i].toFixed(2);
    });
    if (this.latent.num_classes) $("class").value = s.label;
    if (this.latent.cat_dim) $("category").value = s.cat;
  }

  setZ(z) {
    this.state.z = z;
    this.syncControls();
    return this.render();
  }

  snapshot() {
    const s = this.state;
    return { z: Float32Array.from(s.z), label: s.label, cat: s.cat, cont: Float32Array.from(s.cont) };
  }

  showEnds() {
    const tag = (e) => (e ? `z0=${e.z[0].toFixed(2)}` : "\u2013");
    $("ends").textContent = `A: ${tag(this.ends.a)}, B: ${tag(this.ends.b)}`;
  }

  // ------------------------------------------------------------------------ interpolation
  // z along the great circle (norm interpolated linearly), codes linearly, the class of A:
  // the same path as gan_accel.latent_apps.slerp / lerp
  static slerp(a, b, t) {
    let dot = 0, na = 0, nb = 0;
    for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
    const cos = dot / Math.max(Math.sqrt(na) * Math.sqrt(nb), 1e-12);
    const omega = Math.acos(Math.min(Math.max(cos, -1), 1)), so = Math.sin(omega);
    const out = new Float32Array(a.length);
    for (let i = 0; i < a.length; i++) {
      out[i] = Math.abs(so) < 1e-6 ? (1 - t) * a[i] + t * b[i]
        : (Math.sin((1 - t) * omega) * a[i] + Math.sin(t * omega) * b[i]) / so;
    }
    return out;
  }

  async play(frames) {
    const { a, b } = this.ends;
    if (!a || !b) { $("ends").textContent = "set A and B first"; return; }
    for (let f = 0; f < frames; f++) {
      const t = frames === 1 ? 0 : f / (frames - 1);
      this.state = { z: Playground.slerp(a.z, b.z, t), label: a.label, cat: a.cat,
                     cont: a.cont.map((v, i) => (1 - t) * v + t * b.cont[i]) };
      if (this.latent.cat_dim) this.state.cat = t < 0.5 ? a.cat : b.cat;
      this.syncControls();
      await this.render();
      await new Promise(requestAnimationFrame);
    }
  }

  // ------------------------------------------------------------------------ for tests
  // explicit latents in, the float output (and, with show, the drawn image) out
  async run(rows) {
    const result = await this.generate(rows.map((r) => ({
      z: Float32Array.from(r.z), label: r.label ?? 0,
      codes: Float32Array.from(r.codes ?? []) })));
    return { dims: result.dims, data: Array.from(result.data) };
  }

  async show(row) {
    const L = this.latent, codes = row.codes ?? [];
    this.state = { z: Float32Array.from(row.z), label: row.label ?? 0,
                   cat: L.cat_dim ? Math.max(0, codes.slice(0, L.cat_dim).indexOf(1)) : 0,
                   cont: Float32Array.from(codes.slice(L.cat_dim)) };
    this.syncControls();
    await this.busy;
    const explicit = { z: Float32Array.from(row.z), label: row.label ?? 0,
                       codes: Float32Array.from(codes) };
    return Array.from(this.draw(await this.generate([explicit])).data);
  }
}

async function main() {
  if (location.protocol === "file:") {
    throw new Error("this page cannot run from file:// (browsers refuse its WebAssembly " +
      "module there); serve the folder: gan-accel serve --web DIR, or " +
      "python -m http.server --bind 127.0.0.1 --directory DIR");
  }
  const meta = await (await fetch("model.json")).json();
  const session = await ort.InferenceSession.create(meta.model, { executionProviders: ["wasm"] });
  const app = new Playground(meta, session);
  app.buildControls();
  app.syncControls();
  await app.render();
  const L = meta.latent;
  $("status").textContent = `${meta.variant} generator, step ${meta.step ?? "?"}: ` +
    `${meta.image.channels}x${meta.image.height}x${meta.image.width} images from z ` +
    `(${L.z_dim}, ${L.z_dist})` + (L.num_classes ? `, ${L.num_classes} classes` : "") +
    (L.cat_dim + L.cont_dim ? `, codes ${L.cat_dim} categorical + ${L.cont_dim} continuous` : "");
  $("model-info").textContent = `model ${meta.model} (${meta.dtype}), onnxruntime-web ` +
    `${meta.onnxruntime_web}; output range ${meta.output_range}`;
  return app;
}

const ready = main();
window.playground = { ready };
ready.catch((err) => {
  $("status").textContent = `error: ${err.message}`;
  $("status").className = "error";
});
