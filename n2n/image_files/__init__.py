"""Reading and writing images for inference and training, keeping bit depth, alpha, orientation and colour.

Images are numpy arrays H x W x C of uint8 or uint16, C = 1 (grey), 2 (grey + alpha), 3 (RGB) or
4 (RGBA); TIFFs may also hold other channel counts. Pixels are returned the way they are meant to be
displayed: the EXIF orientation is applied on reading and the written files carry no orientation tag.

- `reading`: files to arrays, every declared size checked against `limits` before decoding;
- `writing`: arrays to files, atomically;
- `network_input`: arrays to the network's float tensors and back, and training's C x H x W tensors;
- `png16`: the 16-bit colour PNG codec that Pillow lacks.
"""
from n2n.image_files.limits import DEFAULT_MAX_PIXELS, check_pixels, max_pixels, set_max_pixels
from n2n.image_files.network_input import (
    PIXEL_MAX,
    as_float,
    read_training_image,
    to_chw,
    to_model_input,
    to_uint8_chw,
)
from n2n.image_files.png16 import encode_png16
from n2n.image_files.reading import (
    IMAGE_EXTENSIONS,
    TIFF_EXTENSIONS,
    ImageInfo,
    apply_orientation,
    read_frames,
    read_image,
)
from n2n.image_files.writing import write_image

__all__ = ["DEFAULT_MAX_PIXELS", "IMAGE_EXTENSIONS", "PIXEL_MAX", "TIFF_EXTENSIONS", "ImageInfo", "apply_orientation",
           "as_float", "check_pixels", "encode_png16", "max_pixels", "read_frames", "read_image",
           "read_training_image", "set_max_pixels", "to_chw", "to_model_input", "to_uint8_chw", "write_image"]
