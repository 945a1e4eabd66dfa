from django.urls import path

from arena.evalsets.views import evalset_list, evalset_vote, run_progress

urlpatterns = [
    path("evalsets/", evalset_list, name="evalset_list"),
    path("evalsets/<int:set_id>/vote/", evalset_vote, name="evalset_vote"),
    path("runs/<int:run_id>.json", run_progress, name="run_progress"),
]
