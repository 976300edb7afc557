"""Export a distilled student to a diffusers-format folder.

    python tools/export.py CONFIG CKPT OUT_DIR [--steps N] [--guidance W]
    python tools/export.py TEACHER_CONFIG TEACHER_CKPT OUT_DIR --layout ddpm
    python tools/export.py TEACHER_CONFIG TEACHER_CKPT OUT_DIR --layout dit

The folder holds the student network (``save_pretrained``), its guidance
embedding, the VAE / text encoder of latent models, a scheduler config and
``mmdistill_pipeline.json`` + ``pipeline_mmdistill.py`` (a stand-alone
sampler needing only torch and diffusers); see docs/real_teachers.md.
``--layout ddpm`` writes a trained diffusers ``UNet2DModel`` teacher as the
folder pretrained DDPM models ship in (``model_index.json``, ``unet/``,
``scheduler/``), the input of the distillation configs; ``--layout dit``
a trained latent ``DiTTransformer2DModel`` teacher with its VAE as the
DiT-XL-2-256 folder layout (``model_index.json``, ``transformer/``, ``vae/``,
``scheduler/``).
"""
import argparse

from mmdistill.apis import (add_common_args, check_finite_arg,
                            check_output_folder, cli_main, load_config)


def parse_args():
    p = argparse.ArgumentParser(description='Export a distilled student')
    p.add_argument('config', help='the config the checkpoint was trained '
                   'with')
    p.add_argument('checkpoint', help='stage-1 or stage-2 checkpoint')
    p.add_argument('out_dir', help='output folder (diffusers format)')
    p.add_argument('--steps', type=int, default=None,
                   help='default number of sampling steps (default: the '
                   "checkpoint's N for stage 2, else the config's)")
    p.add_argument('--guidance', type=float, default=None,
                   help="default guidance w (Meng's convention)")
    p.add_argument('--sample-model', choices=['ema', 'orig'], default='ema')
    p.add_argument('--layout', choices=['pipeline', 'ddpm', 'dit'],
                   default='pipeline',
                   help="'pipeline': a distilled student with its sampler "
                   "(default); 'ddpm': a trained UNet2DModel teacher as a "
                   'pretrained DDPM folder (model_index.json, unet/, '
                   "scheduler/); 'dit': a trained latent DiT teacher as "
                   'the DiT folder (model_index.json, transformer/, vae/, '
                   'scheduler/)')
    add_common_args(p)
    return p.parse_args()


@cli_main
def main():
    from mmdistill import register_all_modules
    register_all_modules()
    from mmdistill.apis import init_model, load_student
    from mmdistill.models.adapters.export import (default_steps,
                                                  export_student,
                                                  export_teacher_folder)
    args = parse_args()
    check_output_folder(args.out_dir, 'OUT_DIR')
    check_finite_arg(args.guidance, '--guidance')
    cfg = load_config(args.config, args.cfg_options)
    if args.layout in ('ddpm', 'dit'):
        model = init_model(cfg, args.checkpoint)
        export_teacher_folder(model, args.out_dir, args.sample_model,
                              args.layout)
        print(f'exported the {type(model.net.model).__name__} teacher to '
              f'{args.out_dir}')
        return
    model = load_student(args.checkpoint, cfg)
    steps = args.steps or default_steps(model)
    out = export_student(model, args.out_dir, steps, args.guidance,
                         args.sample_model)
    print(f'exported {out["network_class"]} ({out["num_inference_steps"]} '
          f'steps, w={out["guidance_default"]}) to {args.out_dir}')


if __name__ == '__main__':
    main()
