/// The page at `/`: type a user id, see the recommendations and the per-stage timings.
enum RecommenderPage {
    static let html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Herd recommender</title>
        <style>
        body{font-family:system-ui,sans-serif;margin:2rem;max-width:46rem}
        table{border-collapse:collapse;margin-top:1rem}td,th{padding:.25rem .75rem;border-bottom:1px solid #ddd;text-align:right}
        .flag{color:#a40}.err{color:#b00}
        </style></head>
        <body>
        <h1>Herd recommender</h1>
        <form id="f">user id <input id="user" name="user" size="12" value="1">
        k <input id="k" size="3" value="10"> canK <input id="cank" size="4" value="50">
        <button type="submit">Recommend</button></form>
        <div id="out"></div>
        <script>
        document.getElementById('f').addEventListener('submit', async (e) => {
          e.preventDefault();
          const u = encodeURIComponent(document.getElementById('user').value.trim());
          const k = document.getElementById('k').value, c = document.getElementById('cank').value;
          const out = document.getElementById('out');
          const r = await fetch(`/recommender/recommend/${u}?k=${k}&canK=${c}`);
          const j = await r.json();
          if (!j.success) { out.innerHTML = `<p class="err" id="error">${j.errorCode}: ${j.errorMsg}</p>`; return; }
          let h = '';
          if (j.coldStart) h += '<p class="flag" id="cold">unknown user: most popular items</p>';
          if (j.degraded) h += `<p class="flag" id="degraded">degraded: ${j.reason}</p>`;
          h += '<table id="recs"><tr><th>#</th><th>item id</th><th>probability</th></tr>';
          j.ids.forEach((id, i) => { h += `<tr><td>${i + 1}</td><td>${id}</td><td>${j.probs[i].toFixed(4)}</td></tr>`; });
          h += '</table><p id="timings">stage ms: ' + Object.entries(j.timingsMs || {}).map(([s, v]) => `${s} ${v.toFixed(2)}`).join(', ') + '</p>';
          out.innerHTML = h;
        });
        </script>
        </body></html>
        """
}
