// convolens conversation page: the recording player. The transcript follows the playhead
// (the utterance and the word being heard are highlighted) and a click on a word plays
// from it. The audio is the redacted copy (/dashboard/audio/...): PII is beeped out.
// No framework, no build step.
(function () {
  "use strict";

  // The last index whose start is <= t in a list sorted by start (-1 if none).
  function lastStartingBefore(items, t) {
    var lo = 0, hi = items.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (items[mid].start <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }

  function timed(elements, startKey, endKey) {
    return Array.prototype.map.call(elements, function (el) {
      return { el: el, start: parseFloat(el.dataset[startKey]), end: parseFloat(el.dataset[endKey]) };
    }).filter(function (item) { return !isNaN(item.start); })
      .sort(function (a, b) { return a.start - b.start; });
  }

  function setup() {
    var audio = document.getElementById("recording");
    var transcript = document.getElementById("transcript");
    if (!audio || !transcript) return;
    // A word cut by an evidence mark is several spans with one data-w (its index in its
    // utterance): they light together.
    var byWord = {};
    var words = [];
    transcript.querySelectorAll(".w[data-s]").forEach(function (span) {
      var key = span.closest(".utt").dataset.utterance + "#" + span.dataset.w;
      span.dataset.key = key;
      if (!byWord[key]) { byWord[key] = []; words.push(span); }
      byWord[key].push(span);
    });
    words = timed(words, "s", "e");
    var utterances = timed(transcript.querySelectorAll(".utt[data-start]"), "start", "end");
    var litWord = null, litUtterance = null, frame = null;

    function light(t) {
      // The word heard at t: the last one started, while it lasts (a pause lights none).
      var i = lastStartingBefore(words, t);
      var word = i >= 0 && t <= words[i].end + 0.15 ? words[i].el.dataset.key : null;
      if (word !== litWord) {
        (byWord[litWord] || []).forEach(function (s) { s.classList.remove("current"); });
        (byWord[word] || []).forEach(function (s) { s.classList.add("current"); });
        litWord = word;
      }
      var j = lastStartingBefore(utterances, t);
      var utterance = j >= 0 && t <= utterances[j].end + 0.5 ? utterances[j].el : null;
      if (utterance !== litUtterance) {
        if (litUtterance) litUtterance.classList.remove("playing");
        if (utterance) {
          utterance.classList.add("playing");
          // Follow the playback, without jumping the page while the reader is elsewhere
          // and paused.
          if (!audio.paused) utterance.scrollIntoView({ block: "nearest", behavior: "smooth" });
        }
        litUtterance = utterance;
      }
    }

    function follow() {
      light(audio.currentTime);
      frame = audio.paused ? null : window.requestAnimationFrame(follow);
    }

    audio.addEventListener("timeupdate", function () { light(audio.currentTime); });
    audio.addEventListener("seeked", function () { light(audio.currentTime); });
    audio.addEventListener("play", function () { if (frame === null) follow(); });

    transcript.addEventListener("click", function (event) {
      var span = event.target.closest(".w[data-s]");
      if (!span) return;
      event.preventDefault();
      audio.currentTime = parseFloat(span.dataset.s);
      light(audio.currentTime);
      var playing = audio.play();
      if (playing && playing.catch) playing.catch(function () { /* the user presses play */ });
    });
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
