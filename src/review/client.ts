/**
 * The page's one script, served as /assets/review.js (the CSP allows no inline script): keyboard
 * shortcuts, the heat-map toggle, and the display window of a capture (docs/review.md).
 *
 * The window: /img/<id>/display.bin is the capture's 16-bit values (little-endian, the size and
 * the auto window in its X-Display header, render.ts); they are drawn into the canvas through
 * low = level − width/2, high = level + width/2 (low → black, high → white). Nothing of it goes
 * back to the server, and "the model's view" shows /img/<id>/model.png, the model's exact input.
 * Without this script, or until the values arrive, the model's view is what the stage shows.
 */
export const JS = `
(function () {
  'use strict';
  var stage = document.querySelector('.stage');
  var heatToggle = document.getElementById('heat-toggle');
  var modelToggle = document.getElementById('model-toggle');
  var canvas = stage && stage.querySelector('canvas.display');
  var level = document.getElementById('win-level');
  var width = document.getElementById('win-width');
  var autoButton = document.getElementById('win-auto');
  var text = document.getElementById('win-text');
  var values = null, info = null, pixels = null, ctx = null;

  function show() {
    if (stage) stage.classList.toggle('windowed', !!values && !(modelToggle && modelToggle.checked));
  }
  function draw() {
    var w = Number(width.value), low = Number(level.value) - w / 2, px = pixels.data;
    for (var i = 0, j = 0; i < values.length; i++, j += 4) {
      var t = (values[i] - low) / w;
      var v = t <= 0 ? 0 : t >= 1 ? 255 : Math.round(t * 255);
      px[j] = v; px[j + 1] = v; px[j + 2] = v; px[j + 3] = 255;
    }
    ctx.putImageData(pixels, 0, 0);
    var lo = Math.round(low), hi = Math.round(low + w);
    canvas.dataset.low = String(lo);
    canvas.dataset.high = String(hi);
    var auto = lo === info.low && hi === info.high;
    text.textContent = 'display window ' + lo + '–' + hi + (auto ? ' (auto: the ' + (info.region === 'electrode' ? 'electrode\\u2019s' : 'capture\\u2019s') + ' 0.5–99.5th percentiles' + (info.region === 'electrode' ? ', the bright border left out' : '') + ')' : ' (auto ' + info.low + '–' + info.high + ': key 0)') + '; the model\\u2019s input is not changed by it';
  }
  function set(l, w) {
    var span = info.max - info.min;
    w = Math.max(1, Math.min(2 * span, Math.round(w)));
    l = Math.max(info.min, Math.min(info.max, Math.round(l)));
    width.value = String(w);
    level.value = String(l);
    draw();
  }
  function setAuto() { set((info.low + info.high) / 2, info.high - info.low); }

  if (canvas && level && width) {
    fetch(canvas.dataset.src, { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok || r.headers.get('content-type') !== 'application/octet-stream') throw new Error(r.headers.get('x-placeholder') || 'HTTP ' + r.status);
      info = JSON.parse(r.headers.get('x-display'));
      return r.arrayBuffer();
    }).then(function (buf) {
      values = new Uint16Array(buf);
      canvas.width = info.width;
      canvas.height = info.height;
      ctx = canvas.getContext('2d');
      pixels = ctx.createImageData(info.width, info.height);
      level.min = String(info.min); level.max = String(info.max);
      width.min = '1'; width.max = String(2 * (info.max - info.min));
      [level, width, autoButton].forEach(function (el) { el.disabled = false; });
      setAuto();
      show();
    }).catch(function (err) {
      text.textContent = 'display window unavailable (' + err.message + '): the model\\u2019s view is shown';
      show();
    });
    level.addEventListener('input', draw);
    width.addEventListener('input', draw);
    autoButton.addEventListener('click', setAuto);
  }
  if (modelToggle) modelToggle.addEventListener('change', show);
  if (heatToggle && stage) heatToggle.addEventListener('change', function () { stage.classList.toggle('no-heat', !heatToggle.checked); });

  function flip(box) { box.checked = !box.checked; box.dispatchEvent(new Event('change')); }
  document.addEventListener('keydown', function (e) {
    var t = e.target;
    var typing = t && (t.tagName === 'TEXTAREA' || t.tagName === 'INPUT' && t.type !== 'checkbox' && t.type !== 'range');
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (t && t.type === 'range' && /^Arrow/.test(e.key)) return; // the slider's own keys
    var click = function (sel) { var el = document.querySelector(sel); if (el) { el.click(); e.preventDefault(); } };
    var w = values ? Number(width.value) : 0, l = values ? Number(level.value) : 0;
    if (e.key === 'n') click('button.normal');
    else if (e.key === 'a') click('button.abnormal');
    else if (e.key === 'h' && heatToggle) flip(heatToggle);
    else if (e.key === 'm' && modelToggle) flip(modelToggle);
    else if (e.key === 'j' || e.key === 'ArrowRight') click('a.next');
    else if (e.key === 'k' || e.key === 'ArrowLeft') click('a.prev');
    else if (!values) return;
    else if (e.key === '.') set(l - w / 10, w); // brighter
    else if (e.key === ',') set(l + w / 10, w); // darker
    else if (e.key === '=' || e.key === '+') set(l, w / 1.25); // more contrast
    else if (e.key === '-') set(l, w * 1.25); // less contrast
    else if (e.key === '0') setAuto();
  });
})();
`;
