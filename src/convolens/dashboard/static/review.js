// The review screen's keys: a accepts, c picks the right value (then Enter), s skips.
// Typing in a field is left alone, so a value can be chosen by its first letters.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    var form = null;
    if (event.key === "a") form = document.getElementById("form-accept");
    if (event.key === "s") form = document.getElementById("form-skip");
    if (form) {
      event.preventDefault();
      form.submit();
      return;
    }
    if (event.key === "c") {
      var select = document.getElementById("corrected-value");
      if (select) {
        event.preventDefault();
        select.focus();
      }
    }
  });
  // Enter on the right-value list submits the correction.
  var select = document.getElementById("corrected-value");
  if (select) {
    select.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        document.getElementById("form-correct").submit();
      }
    });
  }
})();
