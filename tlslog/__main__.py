from .cli import run

if __name__ == "__main__":  # worker processes re-import this module; they must not run the app
    run()
