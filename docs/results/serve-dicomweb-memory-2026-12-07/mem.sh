set -u
BIN=${MEDPICK_BIN:-target/debug/medpick}
rm -rf /tmp/bigds/.medpick /tmp/bigds/datastore_v2.json
MALLOC_ARENA_MAX=1 nice -n 19 $BIN --device cpu serve --datastore /tmp/bigds --model pixels --cache none --port 18777 > /tmp/mem-serve.log 2>&1 &
PID=$!
for i in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18777/ && break; sleep 0.5; done
rss() { awk '/VmRSS|VmHWM/ {printf "%s %s kB  ", $1, $2}' /proc/$PID/status; echo; }
echo "started:"; rss
# wait for embedding to finish (pixels model)
for i in $(seq 1 600); do f=$(curl -s http://127.0.0.1:18777/info/ | python3 -c "import sys,json; print(json.load(sys.stdin)['medpick']['embedding'].get('features'))"); [ "$f" = "100" ] && break; sleep 1; done
echo "embedded ($f):"; rss
t0=$(date +%s.%N); curl -s -o /dev/null "http://127.0.0.1:18777/dicom-web/studies?limit=1"; t1=$(date +%s.%N); echo "index built by a one-study QIDO in $(echo "$t1 - $t0" | bc) s"; rss
for k in 1 2; do
  t0=$(date +%s.%N); n=$(curl -s "http://127.0.0.1:18777/dicom-web/instances?limit=100000" | python3 -c "import sys,json; print(len(json.load(sys.stdin)))"); t1=$(date +%s.%N)
  echo "QIDO all instances: $n in $(echo "$t1 - $t0" | bc) s"; rss
done
# A filter on an attribute outside QIDO's row attributes (Manufacturer): every header's text is parsed.
for k in 1 2; do
  t0=$(date +%s.%N); n=$(curl -s "http://127.0.0.1:18777/dicom-web/instances?limit=100000&Manufacturer=GE*" | python3 -c "import sys,json; print(len(json.load(sys.stdin)))"); t1=$(date +%s.%N)
  echo "QIDO all instances with Manufacturer=GE*: $n in $(echo "$t1 - $t0" | bc) s"; rss
done
t0=$(date +%s.%N); curl -s -o /dev/null "http://127.0.0.1:18777/dicom-web/studies/1.3.6.1.4.1.5962.1.2.1.20040119.00042/series/1.3.6.1.4.1.5962.1.3.1.1.20040119.00042/metadata"; t1=$(date +%s.%N); echo "series metadata (100 instances): $(echo "$t1 - $t0" | bc) s"
kill $PID
