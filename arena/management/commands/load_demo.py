"""Load the LLMFAO demo data (idempotent): `manage.py load_demo`."""

from django.core.management.base import BaseCommand

from arena.demo.load import demo_load


class Command(BaseCommand):
    help = (
        "Load the LLMFAO demo data: 59 models, 13 prompts with their recorded answers, 8,931 "
        "human votes and the GPT-4 and GPT-3 verdicts. Does nothing when already loaded."
    )

    def handle(self, *args, **options):
        result = demo_load()
        # "Already loaded" is good news, not a warning: plain text (Django's NOTICE is red).
        summary = result.summary()
        self.stdout.write(self.style.SUCCESS(summary) if result.loaded else summary)
