from django.urls import path

from arena.judging.views import judge_index, judge_run, judge_run_json

urlpatterns = [
    path("judge/", judge_index, name="judge_index"),
    path("judge/runs/<int:run_id>/", judge_run, name="judge_run"),
    path("judge/runs/<int:run_id>.json", judge_run_json, name="judge_run_json"),
]
