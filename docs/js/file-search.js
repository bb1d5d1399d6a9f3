// Search for a site opened from the file system (file://), where browsers refuse the web
// worker of MkDocs's search. The index comes as a script (search/search_index.js, written by
// docs/hooks/offline_search.py); each word of the query must occur in a page section.
(function () {
  if (window.location.protocol !== "file:") return;
  function run() {
    var input = document.getElementById("mkdocs-search-query");
    var out = document.getElementById("mkdocs-search-results");
    if (!input || !out) return;
    var docs = window.KOMPILE_SEARCH_INDEX.docs;
    function esc(v) {
      return v.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
        .replace(/"/g, "&quot;");
    }
    function search() {
      var words = input.value.toLowerCase().split(/\s+/).filter(function (w) { return w; });
      out.innerHTML = "";
      if (!words.length) return;
      var hits = docs.filter(function (d) {
        var text = (d.title + " " + d.text).toLowerCase();
        return words.every(function (w) { return text.indexOf(w) >= 0; });
      });
      hits.sort(function (a, b) {  // sections whose title holds a word first
        var ta = words.some(function (w) { return a.title.toLowerCase().indexOf(w) >= 0; });
        var tb = words.some(function (w) { return b.title.toLowerCase().indexOf(w) >= 0; });
        return (tb ? 1 : 0) - (ta ? 1 : 0);
      });
      if (!hits.length) { out.innerHTML = "<p>No results found</p>"; return; }
      hits.slice(0, 50).forEach(function (d) {
        var text = d.text.replace(/<[^>]*>/g, "");
        var at = Math.max(0, text.toLowerCase().indexOf(words[0]) - 60);
        out.insertAdjacentHTML("beforeend", '<article><h3><a href="' + esc(base_url + "/" +
          d.location) + '">' + esc(d.title) + "</a></h3><p>" + esc(text.substr(at, 200)) +
          "</p></article>");
      });
    }
    input.addEventListener("keyup", search);
    var q = /[?&]q=([^&]*)/.exec(window.location.search);
    if (q) { input.value = decodeURIComponent(q[1].replace(/\+/g, " ")); search(); }
  }
  var s = document.createElement("script");
  s.src = base_url + "/search/search_index.js";
  s.onload = run;
  document.head.appendChild(s);
})();
