/*! shoplink player widget: makes a <video> on any page shoppable.
 *
 *   <script src="{base}/v1/player.js" defer></script>
 *   <video src="..." controls data-shoplink-video="12"></video>     (a video's anchor timeline)
 *   <video src="..." controls data-shoplink-live="3"></video>       (a live session's pinned products)
 *
 * Optional: data-shoplink-target="_self" to open products in the same tab (default: a new tab);
 * data-shoplink-poll="30": seconds between checks for the replay after a live ended (min 2).
 * The overlay lives in a shadow root next to the video, so the host page's styles do not reach it
 * and its styles do not leak out. Public endpoints only, no cookies (CORS without credentials).
 */
(() => {
  'use strict';
  if (window.shoplink && window.shoplink.version) return;  // included twice

  const script = document.currentScript;
  const BASE = script && script.src ? script.src.replace(/\/v1\/player\.js(?:[?#].*)?$/, '') : location.origin;
  const mounted = new WeakMap();
  const events = window.__shoplinkEvents || null;  // player_events.js (view, impression, progress)

  // Nothing of the host page reaches in: its selectors do not cross the shadow boundary, and what
  // would be inherited through the <shoplink-overlay> element (`* {font-size: 22px}` matches it) is
  // reset by `all: initial` on the two top-level boxes, which then set every inherited value.
  const CSS = `
    :host { all: initial; position: absolute; pointer-events: none; z-index: 2147483000; }
    .layer, .sr { all: initial; display: block; font: 14px/1.3 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
                  color: #16181d; text-align: left; direction: ltr; visibility: visible; cursor: auto;
                  pointer-events: none; }
    .layer { position: absolute; inset: 0; overflow: hidden; }
    .stack { position: absolute; left: 8px; right: 8px; bottom: 60px; display: flex; flex-direction: column;
             align-items: flex-start; gap: 6px; }
    .card { pointer-events: auto; display: flex; align-items: center; gap: 8px; box-sizing: border-box;
            max-width: min(320px, 100%); padding: 6px 10px 6px 6px; border-radius: 12px; color: #16181d;
            background: rgba(255,255,255,.94); box-shadow: 0 2px 10px rgba(0,0,0,.28); text-decoration: none;
            animation: pop .18s ease-out; font: inherit; }
    .card.placed { position: absolute; }
    .card:hover { background: #fff; }
    .card:focus-visible { outline: 3px solid #7aa7ff; outline-offset: 2px; }
    .card img { width: 44px; height: 44px; object-fit: cover; border-radius: 8px; flex: none; background: #eee; }
    .text { display: flex; flex-direction: column; min-width: 0; }
    .title { font-weight: 600; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
    .price { color: #4a4f5c; font-size: 13px; }
    .cta { margin-left: auto; padding: 4px 10px; border-radius: 999px; background: #c41e52; color: #fff;
           font-weight: 700; font-size: 12px; flex: none; }
    .card.sold-out { cursor: not-allowed; background: rgba(236,238,242,.94); }
    .card.sold-out .cta { background: #4a4f5c; }
    .card.sold-out .title, .card.sold-out .price { text-decoration: line-through; }
    .card.preview { pointer-events: none; }
    .badge { position: absolute; top: 8px; left: 8px; padding: 2px 8px; border-radius: 6px; font-size: 12px;
             font-weight: 700; color: #fff; background: #c41e52; letter-spacing: .04em; }
    .badge.ended { background: #4a4f5c; }
    .offer { pointer-events: auto; position: absolute; left: 50%; top: 40%; transform: translateX(-50%);
             padding: 10px 16px; border-radius: 999px; background: #fff; color: #16181d; font-weight: 700;
             text-decoration: none; box-shadow: 0 2px 10px rgba(0,0,0,.35); white-space: nowrap; }
    .offer:focus-visible { outline: 3px solid #7aa7ff; outline-offset: 2px; }
    .sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
    @media (max-width: 480px) { .card { max-width: 88%; font-size: 13px; } .card img { width: 36px; height: 36px; } }
    @keyframes pop { from { transform: translateY(6px); opacity: 0; } to { transform: none; opacity: 1; } }
    @media (prefers-reduced-motion: reduce) { .card { animation: none; } }`;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) node.setAttribute(k, String(v));
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  let sheet = null;
  function adoptStyles(root) {
    if ('adoptedStyleSheets' in root && typeof CSSStyleSheet === 'function' && CSSStyleSheet.prototype.replaceSync) {
      if (!sheet) { sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); }
      root.adoptedStyleSheets = [sheet];
      return null;
    }
    const style = document.createElement('style');  // older browsers
    style.textContent = CSS;
    return style;
  }

  function price(p) {
    return p && p.price != null ? `${p.currency || ''} ${p.price}`.trim() : '';
  }

  class Overlay {
    constructor(video) {
      this.video = video;
      this.target = video.dataset.shoplinkTarget === '_self' ? '_self' : '_blank';
      this.host = document.createElement('shoplink-overlay');
      // CSSOM only (no style attribute, no <style> element where constructable sheets exist): the
      // widget works on pages with a strict Content-Security-Policy (style-src without 'unsafe-inline').
      this.host.style.cssText = 'position:absolute;pointer-events:none;margin:0;padding:0;border:0;';
      this.root = this.host.attachShadow({ mode: 'open' });
      const style = adoptStyles(this.root);
      this.layer = el('div', { class: 'layer' });
      this.stack = el('div', { class: 'stack', role: 'region', 'aria-label': 'Products in this video' });
      this.live = el('div', { class: 'sr', 'aria-live': 'polite' });
      this.layer.append(this.stack);
      this.root.append(...(style ? [style] : []), this.layer, this.live);
      video.insertAdjacentElement('afterend', this.host);
      this.cards = new Map();  // key -> element
      const place = () => this.place();
      new ResizeObserver(place).observe(video);
      window.addEventListener('resize', place);
      video.addEventListener('loadedmetadata', place);
      this.place();
    }

    /** Cover the video exactly: the overlay shares the video's containing block. */
    place() {
      const v = this.video;
      const parent = v.offsetParent;
      const hostParent = this.host.offsetParent;
      let left = v.offsetLeft;
      let top = v.offsetTop;
      if (parent !== hostParent && parent) {  // different containing blocks: fall back to page coordinates
        const r = v.getBoundingClientRect();
        const p = (hostParent || document.body).getBoundingClientRect();
        left = r.left - p.left;
        top = r.top - p.top;
      }
      Object.assign(this.host.style, { left: `${left}px`, top: `${top}px`,
        width: `${v.offsetWidth}px`, height: `${v.offsetHeight}px` });
      this.frame = this.contentRect();
      for (const card of this.cards.values()) this.position(card);
    }

    /** The picture inside the element (object-fit: contain letterboxes it). */
    contentRect() {
      const v = this.video;
      const W = v.offsetWidth;
      const H = v.offsetHeight;
      if (!v.videoWidth || !v.videoHeight) return { x: 0, y: 0, w: W, h: H };
      const scale = Math.min(W / v.videoWidth, H / v.videoHeight);
      const w = v.videoWidth * scale;
      const h = v.videoHeight * scale;
      return { x: (W - w) / 2, y: (H - h) / 2, w, h };
    }

    /** At its stored place (fractions of the picture), moved and narrowed as needed so that the
     *  whole card stays inside the picture, whatever position was chosen and however small the player. */
    position(card) {
      const pos = card._pos;
      if (!pos || !this.frame) return;
      const f = this.frame;
      const pad = Math.min(8, f.w / 20);
      const room = Math.max(0, f.w - 2 * pad);
      const wanted = pos.w ? Math.max(120, Math.round(pos.w * f.w)) : 320;
      card.style.maxWidth = `${Math.floor(Math.min(wanted, room))}px`;
      card.style.left = `${Math.round(f.x + pad)}px`;  // measure at full width first
      card.style.top = `${Math.round(f.y + pad)}px`;
      const w = card.offsetWidth;
      const h = card.offsetHeight;
      const clamp = (v, lo, hi) => Math.max(lo, Math.min(v, hi));
      card.style.left = `${Math.round(clamp(f.x + pos.x * f.w, f.x + pad, f.x + f.w - pad - w))}px`;
      card.style.top = `${Math.round(clamp(f.y + pos.y * f.h, f.y + pad, f.y + f.h - pad - h))}px`;
    }

    /** Show exactly these items: [{key, code, link, title, price, image, position, soldOut}]. */
    show(items) {
      const keep = new Set(items.map((i) => i.key));
      for (const [key, card] of this.cards) {
        if (!keep.has(key)) { card.remove(); this.cards.delete(key); }
      }
      const added = [];
      for (const item of items) {
        let card = this.cards.get(item.key);
        if (!card) {
          card = this.card(item);
          this.cards.set(item.key, card);
          (item.position ? this.layer : this.stack).append(card);
          added.push(item.title);
        }
        this.state(card, item);
        this.position(card);
      }
      if (added.length) this.live.textContent = `Now showing: ${added.join(', ')}`;
      this.video.dispatchEvent(new CustomEvent('shoplink:cards', { detail: { codes: items.map((i) => i.code) } }));
    }

    /** The one place a product card is made (the studio's preview uses it too). */
    card(item) {
      const a = el('a', { class: `card${item.position ? ' placed' : ''}`, target: this.target,
        rel: 'noopener', 'data-code': item.code, part: 'card' });
      if (item.image) a.append(el('img', { src: item.image, alt: '', loading: 'lazy', referrerpolicy: 'no-referrer' }));
      a.append(el('span', { class: 'text' }, el('span', { class: 'title' }, item.title),
        el('span', { class: 'price' }, item.price)), el('span', { class: 'cta' }, 'Shop'));
      a._pos = item.position;
      a._item = item;
      if (events && !this.isPreview) events.card(this.video, a, item.code);  // no beacons for the studio preview
      // The link carries the playback second at the moment of the click (keyboard or pointer).
      const stamp = (e) => {
        const current = a._item;
        if (current.soldOut || !current.link) { if (e.type === 'click') e.preventDefault(); return; }
        a.href = this.hrefFor(current);
      };
      a.addEventListener('pointerdown', stamp);
      a.addEventListener('keydown', (e) => { if (e.key === 'Enter') stamp(e); });
      a.addEventListener('click', stamp);
      return a;
    }

    /** A sold-out card is disabled: no link (nothing to click, not in the tab order), says so. */
    state(card, item) {
      card._item = item;
      const soldOut = Boolean(item.soldOut);
      card.classList.toggle('sold-out', soldOut);
      card.querySelector('.cta').textContent = soldOut ? 'Sold out' : 'Shop';
      if (soldOut || !item.link) {
        card.removeAttribute('href');
        card.setAttribute('role', 'link');
        card.setAttribute('aria-disabled', 'true');
      } else {
        card.href = item.link;
        card.removeAttribute('role');
        card.removeAttribute('aria-disabled');
      }
    }

    hrefFor(item) {
      return item.link;
    }

    badge(text, ended) {
      if (!this.badgeEl) {
        this.badgeEl = el('span', { class: 'badge' });
        this.layer.append(this.badgeEl);
      }
      this.badgeEl.textContent = text;
      this.badgeEl.classList.toggle('ended', Boolean(ended));
    }
  }

  class VideoOverlay extends Overlay {
    constructor(video, videoId) {
      super(video);
      this.videoId = videoId;
      this.anchors = [];
      const update = () => this.update();
      for (const type of ['timeupdate', 'seeked', 'seeking', 'play', 'loadedmetadata']) video.addEventListener(type, update);
      if (events) {
        const ref = { video: videoId };
        video.addEventListener('play', () => events.play(video, ref));
        for (const type of ['timeupdate', 'ended']) video.addEventListener(type, () => events.time(video, ref));
      }
      this.load();
    }

    async load() {
      const r = await fetch(`${BASE}/v1/videos/${encodeURIComponent(this.videoId)}/anchors`,
        { mode: 'cors', credentials: 'omit' });
      if (!r.ok) throw new Error(`shoplink: anchors for video ${this.videoId}: HTTP ${r.status}`);
      const body = await r.json();
      this.anchors = (body.anchors || []).map((a) => ({
        key: `a${a.id}`, code: a.code, link: a.link, start: a.start_s, end: a.end_s, position: a.position || null,
        title: a.label || (a.product && a.product.title) || 'Product', price: price(a.product),
        image: (a.product && a.product.image_url) || a.thumbnail_url || null }));
      this.video.dataset.shoplinkReady = 'true';
      this.update();
    }

    update() {
      const t = this.video.currentTime || 0;
      this.show(this.anchors.filter((a) => a.start <= t && t < a.end));
    }

    hrefFor(item) {
      const url = new URL(item.link);
      url.searchParams.set('t', String(Math.floor(this.video.currentTime || 0)));
      return url.toString();
    }
  }

  class LiveOverlay extends Overlay {
    constructor(video, liveId) {
      super(video);
      this.liveId = liveId;
      this.seq = null;
      this.pins = new Map();
      this.retries = 0;
      this.connect();
    }

    url(path) {
      return `${BASE}/v1/live/${encodeURIComponent(this.liveId)}${path}`;
    }

    connect() {
      const resume = this.seq != null ? `?last_event_id=${this.seq}` : '';
      const es = new EventSource(this.url(`/events${resume}`));
      this.es = es;
      const on = (type, fn) => es.addEventListener(type, (e) => {
        const data = JSON.parse(e.data);
        if (e.lastEventId) this.seq = Number(e.lastEventId);
        this.retries = 0;
        fn(data);
        this.render();
      });
      on('state', (s) => {
        if (events) events.joined(this.video, this.liveId);
        this.status = s.status;
        this.replayVideoId = s.replay_video_id;
        this.pins = new Map((s.pins || []).map((p) => [p.product_id, p]));
      });
      on('pin', (e) => { this.pins.delete(e.pin.product_id); this.pins.set(e.pin.product_id, e.pin); });
      on('unpin', (e) => { this.pins.delete(e.product_id); });
      on('sold_out', (e) => {
        const p = this.pins.get(e.product_id);
        if (p) this.pins.set(e.product_id, { ...p, sold_out: e.sold_out });
      });
      on('start', () => { this.status = 'live'; });
      on('end', () => { this.status = 'ended'; this.pins.clear(); es.close(); this.awaitReplay(); });
      // Reconnect ourselves with ?last_event_id (no custom header, so no CORS preflight), backing
      // off; a live that does not exist (404) is said so once, never retried.
      es.addEventListener('error', () => {
        if (this.status === 'ended') return;
        es.close();
        this.retry();
      });
    }

    async retry() {
      let status = 0;
      try { status = (await fetch(this.url(''), { mode: 'cors', credentials: 'omit', cache: 'no-store' })).status; }
      catch { /* offline: try again later */ }
      if (status === 404) {
        this.status = 'missing';
        this.render();
        return;
      }
      const delay = Math.min(30000, 2000 * 2 ** Math.min(this.retries, 4));
      this.retries += 1;
      setTimeout(() => this.connect(), delay);
    }

    /** After the end: ask now and then whether the host attached the replay (for up to an hour). */
    async awaitReplay(attempt = 0) {
      const every = Math.max(2, Number(this.video.dataset.shoplinkPoll) || 30) * 1000;
      if (this.replayVideoId || attempt * every > 3600 * 1000) return;
      try {
        const r = await fetch(this.url(''), { mode: 'cors', credentials: 'omit', cache: 'no-store' });
        if (r.ok) this.replayVideoId = (await r.json()).replay_video_id;
      } catch { /* try again later */ }
      if (this.replayVideoId) this.render();
      else setTimeout(() => this.awaitReplay(attempt + 1), every * (0.75 + Math.random() / 2));
    }

    render() {
      this.video.dataset.shoplinkReady = 'true';
      this.video.dataset.shoplinkStatus = this.status || '';
      const labels = { live: 'LIVE', ended: 'Live ended', missing: 'Live not found' };
      this.badge(labels[this.status] || 'Starting soon', this.status !== 'live');
      this.offer(this.status === 'ended' && this.replayVideoId
        ? `${BASE}/watch/live/${encodeURIComponent(this.liveId)}/replay` : null);
      this.show([...this.pins.values()].reverse().map((p) => ({
        key: `p${p.product_id}`, code: p.code, link: p.link, title: p.title, price: price(p),
        image: p.image_url, position: null, soldOut: p.sold_out })));
    }

    /** "Watch the replay": a link to the live's replay page, once the host attached one. */
    offer(href) {
      if (!href) { if (this.offerEl) this.offerEl.remove(); this.offerEl = null; return; }
      if (!this.offerEl) {
        this.offerEl = el('a', { class: 'offer', target: this.target, rel: 'noopener', part: 'replay' }, 'Watch the replay');
        this.layer.append(this.offerEl);
        this.video.dispatchEvent(new CustomEvent('shoplink:replay', { detail: { href } }));
      }
      this.offerEl.href = href;
    }
  }

  /** The studio's preview: the same card, not a link, wherever the editor puts it. It shows no
   *  real anchor: viewer beacons (views, impressions) must skip overlays whose `isPreview` is true. */
  class PreviewOverlay extends Overlay {
    get isPreview() { return true; }

    preview(item) {
      this.show([]);
      if (!item) return;
      this.show([{ key: 'preview', code: 'preview', ...item, link: null }]);
      const card = this.cards.get('preview');
      card.classList.add('preview');
    }
  }

  function mount(video) {
    if (mounted.has(video)) return mounted.get(video);
    let overlay = null;
    if (video.dataset.shoplinkVideo) overlay = new VideoOverlay(video, video.dataset.shoplinkVideo);
    else if (video.dataset.shoplinkLive) overlay = new LiveOverlay(video, video.dataset.shoplinkLive);
    if (overlay) mounted.set(video, overlay);
    return overlay;
  }

  function scan(root) {
    for (const v of (root || document).querySelectorAll('video[data-shoplink-video], video[data-shoplink-live]')) mount(v);
  }

  function preview(video) {
    if (!mounted.has(video)) mounted.set(video, new PreviewOverlay(video));
    return mounted.get(video);
  }

  window.shoplink = { version: 1, base: BASE, scan, mount, preview };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', () => scan());
  else scan();
})();
