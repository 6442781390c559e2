/// The dashboard's stylesheet and script, compiled into the binary: the pages load nothing from anywhere else. The
/// asset route serves only the names in `files`, so no request can reach a file on disk.
enum Assets {
    static let files: [String: (type: String, body: String)] = [
        "dashboard.css": ("text/css; charset=utf-8", css),
        "dashboard.js": ("text/javascript; charset=utf-8", script),
    ]

    static let css = """
        body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
        nav { background: #263238; padding: 8px 16px; }
        nav a { color: #fff; margin-right: 16px; text-decoration: none; font-weight: 600; }
        main { padding: 8px 16px 40px; }
        h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; } h3 { font-size: 14px; }
        table { border-collapse: collapse; margin: 6px 0; }
        th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
        th { background: #f3f5f7; } th a { color: inherit; text-decoration: none; }
        td { font-variant-numeric: tabular-nums; max-width: 36em; overflow-wrap: anywhere; }
        tr.differs td { background: #fff5d6; }
        .status-running { color: #1565c0; } .status-failed { color: #c62828; } .status-interrupted { color: #ef6c00; }
        tr.status-failed td, tr.status-interrupted td { background: #fff8f6; }
        .error { color: #c62828; } .hint, .none, .count { color: #555; }
        details.sql { margin: 4px 0 12px; } details.sql pre { background: #f6f8fa; padding: 8px; overflow-x: auto; }
        form { margin: 8px 0; } label { margin-right: 10px; }
        .curves svg { max-width: 100%; height: auto; } .curves .zooming { fill: #1565c0; fill-opacity: 0.15; }
        """

    /// Three things: copying a query, zooming a chart by dragging across it, and a running run's live updates
    /// (server-sent events: the progress line at once, the curves fetched again when new metrics were logged).
    static let script = """
        'use strict';
        document.addEventListener('click', (event) => {
          const button = event.target.closest('details.sql button.copy');
          if (!button) return;
          const text = button.parentElement.querySelector('pre').textContent;
          const done = () => { button.textContent = 'Copied'; setTimeout(() => { button.textContent = 'Copy'; }, 1500); };
          if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done, () => {}); }
        });

        function stepAt(panel, svg, clientX) {
          const box = svg.getBoundingClientRect();
          const x = (clientX - box.left) * svg.viewBox.baseVal.width / box.width;
          const [left, right] = [Number(panel.dataset.left), Number(panel.dataset.right)];
          const [min, max] = [Number(panel.dataset.xMin), Number(panel.dataset.xMax)];
          return min + (Math.min(Math.max(x, left), right) - left) / (right - left) * (max - min);
        }

        function enableZoom(container) {
          const svg = container.querySelector('svg');
          if (!svg) return;
          let start = null;
          svg.addEventListener('mousedown', (event) => {
            const panel = event.target.closest('g.panel');
            if (panel) { start = { panel, step: stepAt(panel, svg, event.clientX) }; event.preventDefault(); }
          });
          svg.addEventListener('mouseup', (event) => {
            if (!start) return;
            const end = stepAt(start.panel, svg, event.clientX);
            const [from, to] = [Math.min(start.step, end), Math.max(start.step, end)];
            start = null;
            if (to - from < 1) return;
            const url = new URL(location.href);
            url.searchParams.set('from', Math.floor(from));
            url.searchParams.set('to', Math.ceil(to));
            location.href = url.toString();
          });
        }

        function followRun(progress) {
          const run = progress.dataset.run;
          let rows = null;
          const source = new EventSource('/runs/' + run + '/events');
          source.addEventListener('progress', (event) => {
            const state = JSON.parse(event.data);
            progress.textContent = state.line;
            progress.className = 'status-' + state.status;
            document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
            if (rows !== null && state.metric_rows !== rows) {
              fetch('/runs/' + run + '/curves' + location.search).then((r) => r.text()).then((svg) => {
                const curves = document.getElementById('curves');
                curves.innerHTML = svg;
                enableZoom(curves);
                document.body.dataset.redraws = String(Number(document.body.dataset.redraws || 0) + 1);
              });
            }
            rows = state.metric_rows;
            if (state.status !== 'running') source.close();
          });
        }

        document.addEventListener('DOMContentLoaded', () => {
          document.querySelectorAll('.curves').forEach(enableZoom);
          const progress = document.getElementById('progress');
          if (progress && progress.dataset.live === 'true') followRun(progress);
        });
        """
}
