// The page side of chromium-smallprint.ts: draws sample `index` of `seed` on the page's canvas#c with its own
// seeded generator and returns the PNG as a data URL. Plain JavaScript, run by Chromium (not compiled by tsc).
window.drawSample = function drawSample(seed, index) {
  let state = (Math.imul(seed, 1000003) + Math.imul(index, 7919) + 12345) >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const uniform = (a, b) => a + (b - a) * random();
  const int = (a, b) => Math.floor(uniform(a, b + 1));
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const code = Array.from({ length: int(4, 6) }, () => ALPHABET[int(0, 35)]).join('');
  const W = int(768, 1024), H = int(768, 1024);
  const canvas = document.getElementById('c');
  canvas.width = W;
  canvas.height = H;
  const g = canvas.getContext('2d');
  const light = () => `rgb(${int(205, 255)},${int(205, 255)},${int(205, 255)})`;
  const dark = () => `rgb(${int(0, 70)},${int(0, 70)},${int(0, 70)})`;
  const any = () => `rgb(${int(0, 255)},${int(0, 255)},${int(0, 255)})`;
  const background = g.createLinearGradient(0, 0, W, H);
  background.addColorStop(0, light());
  background.addColorStop(1, light());
  g.fillStyle = background;
  g.fillRect(0, 0, W, H);
  // DejaVu Sans's cap height is 0.729 em: 'H' spans y 0..1493 of 2048 units (its glyf entry; OS/2 v1 has no sCapHeight).
  const CAP = 0.729;
  const cap = uniform(8, 16);
  g.font = `${cap / CAP}px DejaVu`;
  const width = g.measureText(code).width;
  const x0 = uniform(20, W - width - 20), y0 = uniform(cap + 20, H - 20);
  const box = [x0 - 15, y0 - cap - 15, x0 + width + 15, y0 + 15];
  const clear = (x, y, w, h) => x + w < box[0] || x > box[2] || y + h < box[1] || y > box[3];
  for (let k = int(4, 9); k > 0; k--) {
    const w = uniform(20, 160), h = uniform(20, 160), x = uniform(0, W - w), y = uniform(0, H - h);
    if (!clear(x, y, w, h)) continue;
    g.fillStyle = any();
    g.strokeStyle = any();
    g.lineWidth = uniform(1, 4);
    g.beginPath();
    const kind = int(0, 2);
    if (kind === 0) g.rect(x, y, w, h);
    else if (kind === 1) g.ellipse(x + w / 2, y + h / 2, w / 2, h / 2, 0, 0, 2 * Math.PI);
    else {
      g.moveTo(x, y + h);
      g.lineTo(x + w / 2, y);
      g.lineTo(x + w, y + h);
      g.closePath();
    }
    if (random() < 0.5) g.fill();
    else g.stroke();
  }
  for (let k = int(2, 5); k > 0; k--) {
    const xa = uniform(0, W), ya = uniform(0, H), xb = uniform(0, W), yb = uniform(0, H);
    let crosses = false;
    for (let t = 0; t <= 1; t += 0.02) if (!clear(xa + (xb - xa) * t, ya + (yb - ya) * t, 0, 0)) crosses = true;
    if (crosses) continue;
    g.strokeStyle = any();
    g.lineWidth = uniform(1, 3);
    g.beginPath();
    g.moveTo(xa, ya);
    g.lineTo(xb, yb);
    g.stroke();
  }
  const WORDS = ['total', 'date', 'paid', 'item', 'Box', 'ref', 'TAX', 'note', 'seat', 'gate', 'Row', 'qty', 'shop', 'north', 'Blue', 'sale'];
  for (let k = int(3, 7); k > 0; k--) {
    const size = uniform(8, 18);
    g.font = `${size / CAP}px DejaVu`;
    const word = WORDS[int(0, WORDS.length - 1)], w = g.measureText(word).width;
    const x = uniform(0, W - w), y = uniform(size, H);
    if (!clear(x, y - size, w, size * 1.3)) continue;
    g.fillStyle = random() < 0.5 ? dark() : any();
    g.fillText(word, x, y);
  }
  g.save();
  g.translate(x0 + width / 2, y0 - cap / 2);
  g.rotate((uniform(-3, 3) * Math.PI) / 180);
  g.font = `${cap / CAP}px DejaVu`;
  g.fillStyle = dark();
  g.fillText(code, -width / 2, cap / 2);
  g.restore();
  const sigma = uniform(0, 10);
  if (sigma > 1) {
    const d = g.getImageData(0, 0, W, H);
    for (let p = 0; p < d.data.length; p += 4) {
      const n = sigma * Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
      for (let ch = 0; ch < 3; ch++) d.data[p + ch] = Math.max(0, Math.min(255, d.data[p + ch] + n));
    }
    g.putImageData(d, 0, 0);
  }
  return { code, width: W, height: H, capHeight: cap, png: canvas.toDataURL('image/png') };
};

window.loadFont = async function loadFont(b64) {
  const face = new FontFace('DejaVu', Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);
  document.fonts.add(await face.load());
};
