"""Drives Tingxie's web UI in headless Chromium and reports what a user would see.

usage: webui_test.py BASE_URL CORPUS_DIR HOTWORD_WAV HOTWORD LONG_WAV MICROPHONE_WAV SCREENSHOT_DIR [API_KEY]
HOTWORD_WAV is transcribed on the single-file tab with HOTWORD; MICROPHONE_WAV is what
Chromium's fake microphone plays, in a loop. With API_KEY (a server started with it), the page
must ask for the key first; it is typed into the dialog as a user would.
Prints one JSON object; the Swift test makes the assertions. Every wait is bounded.
"""
import json
import os
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, corpus, hotword_wav, hotword, long_wav, microphone, shots = sys.argv[1:8]
key = sys.argv[8] if len(sys.argv) > 8 else None
hotword_wav, long_wav, microphone = map(os.path.abspath, (hotword_wav, long_wav, microphone))
os.makedirs(shots, exist_ok=True)
speech = [os.path.abspath(os.path.join(corpus, name)) for name in ("001.wav", "002.wav", "003.wav")]

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
             "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             "--use-file-for-fake-audio-capture=" + microphone, "--autoplay-policy=no-user-gesture-required"]:
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
results = {}


def wait(seconds, condition):
    return WebDriverWait(driver, seconds, poll_frequency=0.25).until(lambda _: condition())


def read(selector, prop="textContent"):
    """One property of every element matching `selector`, read in one step: the page re-renders
    tables and cards while it polls, so element handles found earlier can go stale."""
    return driver.execute_script("return [...document.querySelectorAll(arguments[0])].map(node => node[arguments[1]])", selector, prop)


def choose(input_id, paths):
    field = driver.find_element(By.ID, input_id)
    driver.execute_script("arguments[0].style.display = 'block'", field)
    field.send_keys("\n".join(paths))


def tab(name):
    driver.find_element(By.CSS_SELECTOR, f'nav button[data-tab="{name}"]').click()


def job_count():
    request = urllib.request.Request(base + "/v1/jobs?limit=500", headers={"Authorization": f"Bearer {key}"} if key else {})
    with urllib.request.urlopen(request) as response:
        return len(json.load(response)["jobs"])


try:
    driver.get(base + "/")
    results["title"] = driver.title
    results["tabs"] = read("nav button")
    if key:
        # The page opens without a key and asks for one as soon as the API refuses it.
        wait(15, lambda: driver.execute_script("return document.getElementById('key-dialog').open"))
        results["asked_for_key"] = True
        driver.save_screenshot(os.path.join(shots, "0-key.png"))
        driver.find_element(By.ID, "key-input").send_keys(key)
        driver.find_element(By.CSS_SELECTOR, '#key-dialog button[value="save"]').click()
        driver.get_log("browser")  # the refusals that made the page ask are expected

    # Single file with a hotword: upload, progress, timed segments, the hotword marked.
    wait(15, lambda: driver.find_element(By.ID, "single-limits").text != "")
    choose("single-file", [hotword_wav])
    driver.find_element(By.ID, "single-hotwords").send_keys(hotword)
    driver.find_element(By.ID, "single-start").click()
    wait(90, lambda: read("#single-segments li span"))
    results["single"] = read("#single-segments li span")
    results["single_times"] = read("#single-segments li time")
    results["single_marks"] = read("#single-segments li mark")
    results["single_mark_titles"] = read("#single-segments li mark", "title")
    results["history_rows"] = len(read("#history tr"))
    driver.save_screenshot(os.path.join(shots, "1-single.png"))

    # Over the duration limit: refused in the browser, nothing uploaded.
    before = job_count()
    choose("single-file", [long_wav])
    driver.find_element(By.ID, "single-start").click()
    wait(20, lambda: "error" in driver.find_element(By.ID, "single-message").get_attribute("class"))
    results["limit_message"] = driver.find_element(By.ID, "single-message").text
    results["jobs_before_limit"] = before
    results["jobs_after_limit"] = job_count()
    driver.save_screenshot(os.path.join(shots, "2-limit.png"))

    # Batch: three files, all succeed.
    tab("batch")
    choose("batch-files", speech)
    driver.find_element(By.ID, "batch-start").click()
    wait(120, lambda: len(read("#batch-rows td.status-succeeded")) == 3 or read("#batch-rows td.status-failed"))
    results["batch"] = read("#batch-rows td:nth-child(2)", "className")
    results["batch_download_enabled"] = driver.find_element(By.ID, "batch-download").is_enabled()
    driver.save_screenshot(os.path.join(shots, "3-batch.png"))

    # Live: Chromium's fake microphone plays a corpus sentence and a pause, in a loop.
    tab("live")
    driver.find_element(By.ID, "live-start").click()
    # Partials grow a grey line that the finished sentence replaces; whether one shows depends on
    # how busy the machine is (partials are skipped, never queued), so it is only reported.
    partials = []

    def sentence_shown():
        partials.extend(read("#live-sentences li.partial span"))
        return read("#live-sentences li:not(.partial) span")
    wait(60, sentence_shown)
    results["live"] = read("#live-sentences li:not(.partial) span")
    results["live_partials"] = partials[-3:]
    results["live_first_words"] = read("#live-sentences li small")
    driver.save_screenshot(os.path.join(shots, "4-live.png"))
    driver.find_element(By.ID, "live-stop").click()
    wait(30, lambda: not driver.find_element(By.ID, "live-start").get_attribute("disabled"))

    # System information, then the English switch.
    tab("system")
    wait(15, lambda: len(read("#system-cards .card")) >= 6)
    results["system_cards"] = read("#system-cards .card h2")
    driver.save_screenshot(os.path.join(shots, "5-system.png"))
    driver.find_element(By.ID, "lang-button").click()
    results["english_tabs"] = read("nav button")
    driver.set_window_size(390, 844)
    tab("single")
    driver.save_screenshot(os.path.join(shots, "6-phone-english.png"))
except Exception as error:  # report what happened instead of a bare traceback
    results["error"] = f"{type(error).__name__}: {error}"
    driver.save_screenshot(os.path.join(shots, "failure.png"))
finally:
    results["console"] = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    driver.quit()
print(json.dumps(results, ensure_ascii=False))
