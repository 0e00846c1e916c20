// The behaviour of captioner's result pages, in plain JavaScript: filter and sort the rows,
// light a photo where a caption word looked, seek a video to the clip clicked.
// Each .captioner-page is set up once, so several can share one notebook.
(function () {
  "use strict";

  function setUpFilter(root, items) {
    var box = root.querySelector(".cp-filter"), count = root.querySelector(".cp-count");
    function show() {
      // Every word typed must begin a word of the row's text (caption, tags, file name).
      var terms = box.value.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
      items.forEach(function (item) {
        var text = " " + item.getAttribute("data-text");
        var hit = terms.every(function (term) { return text.indexOf(" " + term) >= 0; });
        item.hidden = !hit;
        shown += hit ? 1 : 0;
      });
      // A video section goes with its clips when the filter leaves none of them.
      root.querySelectorAll(".cp-video").forEach(function (section) {
        section.hidden = terms.length > 0 && !section.querySelector(".cp-item:not([hidden])");
      });
      count.textContent = shown + " of " + items.length + " shown";
    }
    box.addEventListener("input", show);
    show();
  }

  function setUpSort(root, items) {
    var select = root.querySelector(".cp-sort");
    if (!select) return;
    function score(item) {  // rows without a score (errors) go last either way
      var value = item.getAttribute("data-score");
      return value === null ? null : parseFloat(value);
    }
    select.addEventListener("change", function () {
      var way = select.value;
      items.slice().sort(function (a, b) {
        if (way === "given") return a.getAttribute("data-order") - b.getAttribute("data-order");
        var x = score(a), y = score(b);
        if (x === null || y === null) return (x === null) - (y === null);
        return way === "best" ? y - x : x - y;
      }).forEach(function (item) { item.parentNode.appendChild(item); });
    });
  }

  function setUpAttention(item) {
    var maps = JSON.parse(item.getAttribute("data-maps"));
    var grid = parseInt(item.getAttribute("data-grid"), 10);
    var canvas = item.querySelector(".cp-map"), words = item.querySelectorAll(".cp-word");
    var pinned = -1;
    function draw(index) {
      words.forEach(function (word, i) { word.classList.toggle("cp-lit", i === index); });
      canvas.classList.toggle("cp-on", index >= 0);
      if (index < 0) return;
      // The photo is dimmed where the word did not look, the weights stretched from least to
      // most (attention is often diffuse); the browser smooths the grid as it scales it up.
      var weights = maps[index], top = Math.max.apply(null, weights);
      var span = top - Math.min.apply(null, weights) || 1;
      var image = canvas.getContext("2d").createImageData(grid, grid);
      weights.forEach(function (weight, k) { image.data[4 * k + 3] = Math.round(215 * (top - weight) / span); });
      canvas.getContext("2d").putImageData(image, 0, 0);
    }
    words.forEach(function (word, i) {
      if (i >= maps.length) return;
      word.addEventListener("mouseenter", function () { draw(i); });
      word.addEventListener("mouseleave", function () { draw(pinned); });
      word.addEventListener("click", function () { pinned = pinned === i ? -1 : i; draw(pinned); });
    });
  }

  function setUpVideo(section) {
    var video = section.querySelector("video"), clips = section.querySelectorAll(".cp-clip");
    if (!video) return;
    // A format the browser cannot play (AVI, MPEG-4 part 2...) or a moved file: say so.
    function unplayable() { section.querySelector(".cp-unplayable").hidden = false; }
    if (video.error) unplayable();
    video.addEventListener("error", unplayable);
    clips.forEach(function (clip) {
      function seek() { video.currentTime = parseFloat(clip.getAttribute("data-start")); }
      clip.addEventListener("click", seek);
      clip.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); seek(); }
      });
    });
    video.addEventListener("timeupdate", function () {
      var now = video.currentTime;
      clips.forEach(function (clip) {
        var inside = now >= parseFloat(clip.getAttribute("data-start")) &&
                     now < parseFloat(clip.getAttribute("data-end"));
        clip.classList.toggle("cp-now", inside);
      });
    });
  }

  function setUp(root) {
    if (root.getAttribute("data-ready")) return;
    root.setAttribute("data-ready", "1");
    var items = Array.prototype.slice.call(root.querySelectorAll(".cp-item"));
    setUpFilter(root, items);
    setUpSort(root, items);
    // One item that cannot be set up must not leave the others dead.
    function each(selector, setUpOne) {
      root.querySelectorAll(selector).forEach(function (element) {
        try { setUpOne(element); } catch (error) { console.error("captioner page:", error); }
      });
    }
    each(".cp-item[data-maps]", setUpAttention);
    each(".cp-video", setUpVideo);
  }

  document.querySelectorAll(".captioner-page").forEach(setUp);
})();
