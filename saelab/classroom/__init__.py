"""Classroom walkthroughs built from the notebooks: `make classroom` (after `make course`) -> build/classroom/.

    outline      a notebook's sections, exercises and checks, read from its cells
    plan         what the notebooks cannot say themselves: exercise markers, key points, discussion questions
    mark_slides  sets (or --check's) the `slideshow` metadata the notebooks carry: python -m saelab.classroom.mark_slides
    editions     the student edition (solutions replaced by stand-ins) and the solutions edition (the notebook)
    standin      what a replaced solution cell runs: the student's function if written, else the library's
    mistakes     the mistakes each check recognises, read from the check's own code
    timings      measured minutes per section, from an executed notebook's cell timestamps
    slides       reveal.js decks with speaker notes, from a local reveal.js (never a CDN)
    guide        the teacher's guide page of a notebook, in Markdown and HTML
    build        everything into build/classroom/, with an index page: python -m saelab.classroom.build
"""
