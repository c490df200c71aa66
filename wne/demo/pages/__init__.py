"""The demo's pages, one module each; every computation is a plain typed generator
``run(zoo, clean, settings) -> Iterator[Result]`` with no Gradio in it."""
