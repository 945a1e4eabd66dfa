// A leaderboard choice (templates/arena/_leaderboard_toggles.html) applies as soon as it is
// picked; without JavaScript the form's own Show button does it.
(function () {
  "use strict";
  document.querySelectorAll("form[data-submit-on-change]").forEach((form) => {
    form.querySelectorAll("select").forEach((select) => {
      select.addEventListener("change", () => form.submit());
    });
  });
})();
