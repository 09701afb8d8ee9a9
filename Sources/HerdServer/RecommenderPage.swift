/// The page at `/`: type a user id (raw, as in the data, or encoded), see the recommendations with
/// each item's title or feature row, and the per-stage timings (from the answer's `timingsMs` and
/// its `Server-Timing` header).
///
/// `/?user=ID[&k=10&canK=50]` fills the form and asks at once (a link to share, and what the
/// headless-Chromium test loads). When the answer is on the page, `#out` has `data-state="done"`
/// (`"error"` for a refused request) and the table `#recs` one row per item.
enum RecommenderPage {
    static let html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Herd recommender</title>
        <style>
        body{font-family:system-ui,sans-serif;margin:2rem;max-width:64rem}
        table{border-collapse:collapse;margin-top:1rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
        td.num{text-align:right;font-variant-numeric:tabular-nums}td.features{font-size:.8rem;color:#444}
        .flag{color:#a40}.err{color:#b00}#timings span{margin-right:1rem}
        </style></head>
        <body>
        <h1>Herd recommender</h1>
        <form id="f">user id <input id="user" name="user" size="34" value="">
        k <input id="k" name="k" size="3" value="10"> canK <input id="cank" name="canK" size="4" value="50">
        <button type="submit">Recommend</button></form>
        <p><small>Raw ids as in the data, or the encoded ids of the workspace's tables.</small></p>
        <div id="out" data-state="idle"></div>
        <script>
        const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
        function describe(row) {
          if (!row) return '';
          if (row.title != null) return esc(row.title);
          return Object.entries(row).filter(([k, v]) => v !== null).map(([k, v]) =>
            `${esc(k)}=${esc(Array.isArray(v) ? '[' + v.join(',') + ']' : (typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(3) : v))}`).join(' ');
        }
        async function recommend() {
          const out = document.getElementById('out');
          const u = encodeURIComponent(document.getElementById('user').value.trim());
          const k = encodeURIComponent(document.getElementById('k').value), c = encodeURIComponent(document.getElementById('cank').value);
          if (!u) { out.dataset.state = 'idle'; return; }
          out.dataset.state = 'loading';
          out.innerHTML = '<p>…</p>';
          try {
            const r = await fetch(`/recommender/recommend/${u}?k=${k}&canK=${c}&details=1`);
            const j = await r.json();
            if (!j.success) {
              out.innerHTML = `<p class="err" id="error">${esc(j.errorCode)}: ${esc(j.errorMsg)}</p>`;
              out.dataset.state = 'error';
              return;
            }
            let h = '';
            if (j.encodedUserId != null) h += `<p id="user-ids">user ${esc(j.userId)} (encoded ${j.encodedUserId})</p>`;
            if (j.coldStart) h += '<p class="flag" id="cold">unknown user: most popular items</p>';
            if (j.degraded) h += `<p class="flag" id="degraded">degraded: ${esc(j.reason)}</p>`;
            const order = ['recall', 'features', 'preprocess', 'ranking', 'top_k', 'total'];
            const stages = Object.entries(j.timingsMs || {}).sort(([a], [b]) => order.indexOf(a) - order.indexOf(b));
            h += '<p id="timings">stage ms: ' + stages.map(([s, v]) => `<span class="stage" data-stage="${esc(s)}">${esc(s)} ${v.toFixed(2)}</span>`).join('')
               + ` <small>(source: ${esc(j.source)})</small></p>`;
            const st = r.headers.get('Server-Timing');
            if (st) h += `<p><small id="server-timing">Server-Timing: ${esc(st)}</small></p>`;
            h += `<table id="recs"><tr><th>#</th><th>item id</th><th>probability</th><th>title or features</th></tr>`;
            j.ids.forEach((id, i) => {
              const row = j.items ? j.items[i] : null;
              h += `<tr class="rec"><td class="num">${i + 1}</td><td class="item">${esc(id)}</td>`
                 + `<td class="num prob">${j.probs[i].toFixed(4)}</td><td class="features">${describe(row)}</td></tr>`;
            });
            h += '</table>';
            out.innerHTML = h;
            out.dataset.state = 'done';
          } catch (e) {
            out.innerHTML = `<p class="err" id="error">${esc(e)}</p>`;
            out.dataset.state = 'error';
          }
        }
        document.getElementById('f').addEventListener('submit', (e) => { e.preventDefault(); recommend(); });
        const q = new URLSearchParams(location.search);
        if (q.get('k')) document.getElementById('k').value = q.get('k');
        if (q.get('canK')) document.getElementById('cank').value = q.get('canK');
        if (q.get('user')) { document.getElementById('user').value = q.get('user'); recommend(); }
        </script>
        </body></html>
        """
}
