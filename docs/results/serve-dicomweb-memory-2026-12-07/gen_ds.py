# A datastore of S series folders x K slices (CT_small.dcm with its UIDs and z position patched in place).
import struct, os, sys
S, K, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
b = open('/work/shared/data/dicom/CT_small.dcm','rb').read()
def el(g,e,vr):
    h=struct.pack('<HH',g,e)+vr.encode(); i=b.find(h); return i+8, struct.unpack('<H',b[i+6:i+8])[0]
ipp=el(0x20,0x32,'DS'); ser=el(0x20,0xe,'UI'); sop=el(0x8,0x18,'UI'); msop=el(0x2,0x3,'UI'); stu=el(0x20,0xd,'UI')
def put(buf, loc, text, pad):
    at, ln = loc; t = text.encode().ljust(ln, pad); assert len(t) == ln, text; buf[at:at+ln] = t
os.makedirs(out, exist_ok=True)
for s in range(S):
    d = os.path.join(out, f"s{s:05d}"); os.makedirs(d, exist_ok=True)
    for k in range(K):
        f = bytearray(b)
        put(f, ipp, f"-158.135803\\-179.035797\\{k*5:.6f}", b' ')
        put(f, ser, f"1.3.6.1.4.1.5962.1.3.1.1.20040119.{s:05d}", b'\0')
        put(f, stu, f"1.3.6.1.4.1.5962.1.2.1.20040119.{s:05d}", b'\0')
        u = f"1.3.6.1.4.1.5962.1.1.1.1.1.20040119.{s:05d}.{k:05d}"
        put(f, sop, u, b'\0'); put(f, msop, u, b'\0')
        open(os.path.join(d, f"IM{k:05d}.dcm"), 'wb').write(f)
