from .cli import app

if __name__ == "__main__":  # worker processes re-import this module; they must not run the app
    app()
