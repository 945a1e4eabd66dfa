from django.urls import path

from arena.quality import views

urlpatterns = [
    path("staff/quality/", views.quality_index, name="quality_index"),
    path("staff/quality/votes/<int:review_id>", views.quality_vote, name="quality_vote"),
    path("staff/quality/voters/<int:voter_id>", views.quality_voter, name="quality_voter"),
]
