"""The lab from a terminal and the course on nbgrader: `python -m detox_course COMMAND`.

Kept apart from what the notebooks import, detox_helpers: it uses that package (the notebooks'
paths, the settings, the errors), and detox_helpers never imports it. Its modules: `commands`
(the lab's commands, each executing its notebooks), `execute` (one notebook through papermill),
`course_folder` (the nbgrader course folder and the student copies), `grading` (a class's
folder graded, its grades as one CSV) and `__main__` (the command line).

Each lab notebook is one nbgrader assignment named after it (`02_reward_model`). Its exercises
live in its own cells: a solution cell (the learner's code between `### BEGIN SOLUTION` and
`### END SOLUTION`, the task in `# Your turn:` comments above it) and a locked graded cell after
it, whose `### BEGIN HIDDEN TESTS` part the student copy lacks.
"""
